//! Just enough HTTP/1.1 for an upstream behind Envoy: read a request (content-length or chunked body),
//! write a response (sized, or chunked with a flush per chunk), keep the connection alive between them.

use std::io::{self, BufRead, Read, Write};

use super::{ReceivedRequest, Reply};

/// Caps that keep a confused peer from making the upstream buffer without end.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A parsed request and whether the connection may carry another one after it.
pub(super) struct Incoming {
    pub request: ReceivedRequest,
    pub keep_alive: bool,
}

/// Reads one request; `Ok(None)` when the peer closed the connection cleanly between requests.
pub(super) fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
) -> io::Result<Option<Incoming>> {
    let mut head_bytes = 0;
    let Some(request_line) = read_line(reader, &mut head_bytes)? else { return Ok(None) };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut head_bytes)?
            .ok_or_else(|| invalid("connection closed inside the head"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut request =
        ReceivedRequest { method: method.to_owned(), path: path.to_owned(), headers, body: Vec::new() };

    let connection = request.header("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive =
        if version == "HTTP/1.0" { connection.contains("keep-alive") } else { !connection.contains("close") };
    if request.header("expect").is_some_and(|expect| expect.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    let chunked =
        request.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    request.body = if chunked {
        read_chunked(reader)?
    } else {
        let length = match request.header("content-length") {
            Some(value) => {
                value.parse::<usize>().map_err(|_| invalid(format!("bad content-length {value:?}")))?
            }
            None => 0,
        };
        if length > MAX_BODY_BYTES {
            return Err(invalid(format!("body of {length} bytes is over the limit")));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Incoming { request, keep_alive }))
}

/// One CRLF-terminated line without its terminator; `None` at end of stream before any byte.
fn read_line(reader: &mut impl BufRead, head_bytes: &mut usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let read = (&mut *reader).take((MAX_HEAD_BYTES + 1) as u64).read_until(b'\n', &mut line)?;
    *head_bytes += read;
    if read == 0 {
        return Ok(None);
    }
    if *head_bytes > MAX_HEAD_BYTES || !line.ends_with(b"\n") {
        return Err(invalid("request head too long or cut off"));
    }
    let text = String::from_utf8_lossy(&line);
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut head_bytes = 0;
    loop {
        let size_line = read_line(reader, &mut head_bytes)?
            .ok_or_else(|| invalid("connection closed inside a chunked body"))?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers, if any, end with an empty line like the head does.
            while read_line(reader, &mut head_bytes)?.is_some_and(|line| !line.is_empty()) {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("chunked body is over the limit"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(body.get_mut(start..).unwrap_or_default())?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
        head_bytes = 0;
    }
}

/// Writes `reply` to `request`. A HEAD gets the head only.
pub(super) fn write_reply(
    writer: &mut impl Write,
    reply: Reply,
    request: &ReceivedRequest,
    keep_alive: bool,
) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head_only = request.method == "HEAD";
    match reply {
        Reply::Echo => write_reply(writer, Reply::json(200, &request.to_json()), request, keep_alive),
        Reply::Fixed { status, headers, body } => {
            let mut head = status_line_and_headers(status, &headers)?;
            head.push_str(&format!("content-length: {}\r\nconnection: {connection}\r\n\r\n", body.len()));
            writer.write_all(head.as_bytes())?;
            if !head_only {
                writer.write_all(&body)?;
            }
            writer.flush()
        }
        Reply::Stream { status, headers, chunks } => {
            let mut head = status_line_and_headers(status, &headers)?;
            head.push_str(&format!("transfer-encoding: chunked\r\nconnection: {connection}\r\n\r\n"));
            writer.write_all(head.as_bytes())?;
            writer.flush()?;
            if head_only {
                return Ok(());
            }
            // An empty chunk would end the body early, so empty pieces only contribute their delay.
            for chunk in chunks {
                std::thread::sleep(chunk.delay);
                if !chunk.data.is_empty() {
                    writer.write_all(format!("{:x}\r\n", chunk.data.len()).as_bytes())?;
                    writer.write_all(&chunk.data)?;
                    writer.write_all(b"\r\n")?;
                    writer.flush()?;
                }
            }
            writer.write_all(b"0\r\n\r\n")?;
            writer.flush()
        }
    }
}

/// The status line and the caller's headers; framing headers are the writer's to set, so they are dropped.
fn status_line_and_headers(status: u16, headers: &[(String, String)]) -> io::Result<String> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(invalid(format!("invalid response header {name:?}")));
        }
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        if !framing {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    Ok(head)
}

/// HTTP/1.1 allows any reason phrase; a familiar one makes raw captures easier to read.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &str) -> (Incoming, Vec<u8>) {
        let mut written = Vec::new();
        let incoming =
            read_request(&mut Cursor::new(raw.as_bytes().to_vec()), &mut written).unwrap().unwrap();
        (incoming, written)
    }

    #[test]
    fn reads_a_sized_body_and_keeps_http11_alive() {
        let (incoming, _) = parse("POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(incoming.request.method, "POST");
        assert_eq!(incoming.request.path, "/a?b=1");
        assert_eq!(incoming.request.header("host"), Some("x"));
        assert_eq!(incoming.request.body, b"hello");
        assert!(incoming.keep_alive);
    }

    #[test]
    fn reads_a_chunked_body_with_trailers_and_answers_expect() {
        let raw = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n\
                   3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n";
        let (incoming, written) = parse(raw);
        assert_eq!(incoming.request.body, b"abcde");
        assert!(!incoming.keep_alive);
        assert_eq!(written, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn a_closed_connection_is_not_a_request_and_garbage_is_an_error() {
        let mut sink = Vec::new();
        assert!(read_request(&mut Cursor::new(Vec::new()), &mut sink).unwrap().is_none());
        assert!(read_request(&mut Cursor::new(b"nonsense\r\n\r\n".to_vec()), &mut sink).is_err());
        assert!(read_request(
            &mut Cursor::new(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n".to_vec()),
            &mut sink
        )
        .is_err());
    }

    #[test]
    fn fixed_replies_are_sized_and_drop_caller_framing_headers() {
        let (incoming, _) = parse("GET / HTTP/1.1\r\n\r\n");
        let reply = Reply::Fixed {
            status: 404,
            headers: vec![("x-a".into(), "b".into()), ("Content-Length".into(), "999".into())],
            body: b"gone".to_vec(),
        };
        let mut out = Vec::new();
        write_reply(&mut out, reply, &incoming.request, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\nx-a: b\r\ncontent-length: 4\r\nconnection: keep-alive\r\n\r\ngone"
        );
    }

    #[test]
    fn header_injection_is_refused() {
        let (incoming, _) = parse("GET / HTTP/1.1\r\n\r\n");
        let reply = Reply::Fixed {
            status: 200,
            headers: vec![("x".into(), "a\r\nevil: 1".into())],
            body: Vec::new(),
        };
        assert!(write_reply(&mut Vec::new(), reply, &incoming.request, true).is_err());
    }
}

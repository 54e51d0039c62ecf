//! A raw HTTP/1.1 client for fault tests: one request on a fresh connection, and everything the client got
//! back, including a response cut short (a stream Envoy reset after some events), which an ordinary HTTP
//! client reports only as an error. A read timeout stands in for "the client hung".

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tollgate_harness::envoy::Answer;

/// How a response's bytes ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The whole message arrived (its content-length, or the chunked terminator) and the connection closed.
    Complete,
    /// The connection closed or was reset before the message was complete.
    CutShort(String),
    /// Nothing more arrived for the whole read timeout: the client would have hung.
    Hung,
}

/// What one request got back.
#[derive(Debug)]
pub struct Received {
    pub answer: Answer,
    pub ending: Ending,
    /// From sending the request to the end of the response.
    pub elapsed: Duration,
}

impl Received {
    /// The `data:` payloads of an event-stream body, in order.
    pub fn data_events(&self) -> Vec<&str> {
        self.answer.body.lines().filter_map(|line| line.strip_prefix("data: ")).collect()
    }
}

/// POSTs `body` as JSON to `path` on `addr`, `Connection: close`, and reads until the server closes.
pub fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    read_timeout: Duration,
) -> Result<Received> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(read_timeout))?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let started = Instant::now();
    stream.write_all(request.as_bytes())?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Some(Ending::Hung)
            }
            Err(err) => break Some(Ending::CutShort(format!("{:?}", err.kind()))),
        }
    };
    let elapsed = started.elapsed();
    let (answer, complete) = match parse(&raw) {
        Ok(parsed) => parsed,
        // Nothing (or no whole head) arrived: status 0, with whatever bytes came as the body.
        Err(_) => (
            Answer {
                status: 0,
                headers: ureq::http::HeaderMap::new(),
                body: String::from_utf8_lossy(&raw).into(),
            },
            false,
        ),
    };
    let ending = match closed {
        Some(ending) => ending,
        None if complete => Ending::Complete,
        None => Ending::CutShort("closed before the message was complete".into()),
    };
    Ok(Received { answer, ending, elapsed })
}

/// The response in `raw`, and whether its message was complete.
fn parse(raw: &[u8]) -> Result<(Answer, bool)> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) =
        text.split_once("\r\n\r\n").with_context(|| format!("no response head in {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = ureq::http::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').with_context(|| format!("bad header line {line:?}"))?;
        let name = ureq::http::HeaderName::from_bytes(name.trim().as_bytes())?;
        headers.append(name, ureq::http::HeaderValue::from_str(value.trim())?);
    }
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = headers.get("content-length").and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (body, complete) = if chunked {
        dechunk(rest)
    } else {
        (rest.to_owned(), length.is_none_or(|length| rest.len() >= length))
    };
    Ok((Answer { status, headers, body }, complete))
}

/// The data of a chunked body so far, and whether its last (empty) chunk arrived.
fn dechunk(mut rest: &str) -> (String, bool) {
    let mut body = String::new();
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else { return (body, false) };
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { return (body, false) };
        if size == 0 {
            return (body, true);
        }
        let Some(data) = after.get(..size) else {
            // A chunk cut off midway: keep what came.
            body.push_str(after);
            return (body, false);
        };
        body.push_str(data);
        rest = after.get(size..).and_then(|r| r.strip_prefix("\r\n")).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined_and_their_end_is_noticed() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), ("abcde".to_owned(), true));
        assert_eq!(dechunk("3\r\nabc\r\n5\r\nde"), ("abcde".to_owned(), false));
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc";
        let (answer, complete) = parse(raw).unwrap();
        assert_eq!((answer.status, answer.body.as_str(), complete), (200, "abc", false));
    }
}

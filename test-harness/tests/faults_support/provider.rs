//! A mock AI provider that misbehaves on request. It answers as the harness's `MockLlm` does, unless the
//! request body names a fault (`fault:<name>`, in the user's text, which every provider format carries
//! over); then it commits that fault on the wire: garbage, a truncated body, a proxy's HTML page, a reset
//! before or during the response, or a stream that stalls after some events. It speaks raw HTTP/1.1 over
//! tokio (one request per connection, `Connection: close`) because hyper cannot reset a connection or
//! break its own framing on purpose.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tollgate_harness::mock_llm::MockLlm;
use tollgate_harness::upstream::{ReceivedRequest, Reply};

/// The longest a stalled response waits for the peer to give up before the mock closes it itself.
const STALL_CAP: Duration = Duration::from_secs(20);

/// What the provider does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A 200 `application/json` whose body is not JSON.
    Garbage,
    /// A 200 `application/json`, completely framed, holding the first half of the real answer.
    TruncatedJson,
    /// A 502 HTML page, as a load balancer in front of the provider sends it.
    Html502,
    /// The connection is reset before a byte of the response.
    ResetBeforeHeaders,
    /// The head of the real answer and half its body (or half its events), then a reset.
    ResetMidBody,
    /// The head of the real answer and half its body (or half its events), then silence until the peer
    /// gives up.
    Stall,
}

impl Fault {
    const ALL: [Fault; 6] = [
        Fault::Garbage,
        Fault::TruncatedJson,
        Fault::Html502,
        Fault::ResetBeforeHeaders,
        Fault::ResetMidBody,
        Fault::Stall,
    ];

    /// The text that asks for this fault.
    pub fn marker(self) -> &'static str {
        match self {
            Fault::Garbage => "fault:garbage",
            Fault::TruncatedJson => "fault:truncated-json",
            Fault::Html502 => "fault:html-502",
            Fault::ResetBeforeHeaders => "fault:reset-before-headers",
            Fault::ResetMidBody => "fault:reset-mid-body",
            Fault::Stall => "fault:stall",
        }
    }

    fn asked_for(body: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|fault| body.contains(fault.marker()))
    }
}

/// A running faulty provider; stops, closing every connection, when dropped.
pub struct FaultyProvider {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl FaultyProvider {
    /// Serves `mock` on `127.0.0.1:<free port>`.
    pub fn start(mock: MockLlm) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            let _context = runtime.enter();
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)?
        };
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = {
            let (received, mock) = (Arc::clone(&received), Arc::new(mock));
            std::thread::Builder::new().name(format!("faulty-{}", addr.port())).spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(async move {
                        while let Ok((stream, _)) = listener.accept().await {
                            tokio::spawn(serve(stream, Arc::clone(&mock), Arc::clone(&received)));
                        }
                    });
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(Duration::ZERO);
            })?
        };
        Ok(FaultyProvider { addr, received, stop: Some(stop), server: Some(server) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for FaultyProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

async fn serve(mut stream: TcpStream, mock: Arc<MockLlm>, received: Arc<Mutex<Vec<ReceivedRequest>>>) {
    let _ = stream.set_nodelay(true);
    let Ok(request) = read_request(&mut stream).await else { return };
    received.lock().unwrap_or_else(PoisonError::into_inner).push(request.clone());
    let fault = Fault::asked_for(&request.body_text());
    let reply = mock.answer(&request);
    let _ = respond(&mut stream, fault, reply).await;
}

async fn respond(stream: &mut TcpStream, fault: Option<Fault>, reply: Reply) -> std::io::Result<()> {
    let json = [("content-type", "application/json")];
    match (fault, reply) {
        (Some(Fault::Garbage), _) => write_fixed(stream, 200, &json, b"this is not JSON {").await,
        (Some(Fault::TruncatedJson), Reply::Fixed { body, .. }) => {
            write_fixed(stream, 200, &json, body.get(..body.len() / 2).unwrap_or_default()).await
        }
        (Some(Fault::Html502), _) => {
            let page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
            write_fixed(stream, 502, &[("content-type", "text/html")], page).await
        }
        (Some(Fault::ResetBeforeHeaders), _) => reset(stream).await,
        (Some(Fault::ResetMidBody), reply) => {
            write_half(stream, reply).await?;
            reset(stream).await
        }
        (Some(Fault::Stall), reply) => {
            write_half(stream, reply).await?;
            // Whatever the peer sends or however it leaves, the stall is over when it does.
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(STALL_CAP, stream.read(&mut buf)).await;
            Ok(())
        }
        (_, Reply::Fixed { status, headers, body }) => {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            write_fixed(stream, status, &headers, &body).await
        }
        (_, Reply::Stream { status, headers, chunks }) => {
            write_stream_head(stream, status, &headers).await?;
            for chunk in chunks {
                tokio::time::sleep(chunk.delay).await;
                write_chunk(stream, &chunk.data).await?;
            }
            stream.write_all(b"0\r\n\r\n").await
        }
        (_, Reply::Echo) => write_fixed(stream, 500, &[], b"the faulty provider does not echo").await,
    }
}

/// The head of `reply` and the first half of its body (or of its events).
async fn write_half(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Fixed { status, headers, body } => {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let mut head = status_line(status, &headers);
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.get(..body.len() / 2).unwrap_or_default()).await?;
        }
        Reply::Stream { status, headers, chunks } => {
            write_stream_head(stream, status, &headers).await?;
            let half = chunks.len() / 2;
            for chunk in chunks.into_iter().take(half) {
                tokio::time::sleep(chunk.delay).await;
                write_chunk(stream, &chunk.data).await?;
            }
        }
        Reply::Echo => {}
    }
    stream.flush().await?;
    // Lets Envoy read what was sent before the fault that follows.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// Closes with RST rather than FIN.
async fn reset(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.set_zero_linger()?;
    // Dropping the socket (when `serve` returns) sends the RST.
    Ok(())
}

fn status_line(status: u16, headers: &[(&str, &str)]) -> String {
    let reason = match status {
        200 => "OK",
        502 => "Bad Gateway",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nconnection: close\r\n");
    let framing = ["content-length", "transfer-encoding", "connection"];
    for (name, value) in
        headers.iter().filter(|(name, _)| !framing.iter().any(|f| name.eq_ignore_ascii_case(f)))
    {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

async fn write_fixed(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = status_line(status, headers);
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

async fn write_stream_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut head = status_line(status, &headers);
    head.push_str("transfer-encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await
}

async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
    stream.write_all(data).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

/// Reads one request: its head, then a body framed by content-length or chunked encoding.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<ReceivedRequest> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(raw.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let (method, path) =
        (start.next().unwrap_or_default().to_owned(), start.next().unwrap_or_default().to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut request = ReceivedRequest { method, path, headers, body: Vec::new() };
    let mut rest = raw.get(head_end + 4..).unwrap_or_default().to_vec();
    let chunked = request.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    if chunked {
        // The body ends with the empty chunk; the chunk framing is taken off below.
        while !rest.windows(5).any(|w| w == b"0\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            rest.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        request.body = dechunk(&rest);
    } else {
        let length: usize = request.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        while rest.len() < length {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            rest.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        rest.truncate(length);
        request.body = rest;
    }
    Ok(request)
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(rest.get(..line_end).unwrap_or_default()).into_owned();
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let data_start = line_end + 2;
        body.extend_from_slice(rest.get(data_start..data_start + size).unwrap_or_default());
        rest = rest.get(data_start + size + 2..).unwrap_or_default();
    }
    body
}

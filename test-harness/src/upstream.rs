//! An HTTP/1.1 upstream for tests and the demo: answers each request with JSON describing it (or with a
//! scripted [`Reply`]) and records what it received, so tests can assert on what the filter forwarded.

mod reply;
mod request;
mod wire;

use std::collections::HashMap;
use std::io::BufReader;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

pub use reply::{Chunk, Reply};
pub use request::ReceivedRequest;

/// Chooses the reply to each received request.
pub type Responder = Arc<dyn Fn(&ReceivedRequest) -> Reply + Send + Sync>;

/// A background server on its own port, a thread per connection; stops and closes its connections when
/// dropped.
///
/// It is hand-rolled rather than tiny_http: tiny_http parks a burst of new keep-alive connections in a
/// queue that only drains when an earlier connection closes, and Envoy keeps its upstream connections
/// open, so concurrent tests saw requests stall until Envoy's 15 s timeout.
pub struct EchoUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
    stopping: AtomicBool,
    /// Clones of open connections, so drop can shut them down and unblock their threads.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    responder: Responder,
}

impl std::fmt::Debug for EchoUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoUpstream").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl EchoUpstream {
    /// Echoes every request, on `127.0.0.1:<free port>`.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(|_| Reply::Echo)
    }

    /// Answers each request with whatever `responder` returns, on `127.0.0.1:<free port>`. The responder
    /// runs on the connection's thread, so it may sleep or block without holding up other connections.
    pub fn start_with(
        responder: impl Fn(&ReceivedRequest) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), responder)
    }

    /// Like [`EchoUpstream::start_with`] on a chosen address (the demo's fixed `127.0.0.1:9000`).
    pub fn bind(
        addr: SocketAddr,
        responder: impl Fn(&ReceivedRequest) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            responder: Arc::new(responder),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("upstream-{}", addr.port()))
                .spawn(move || accept(&listener, &shared))?
        };
        Ok(EchoUpstream { addr, shared, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for calling the upstream directly.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.received).clone()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        lock(&self.shared.received).clear();
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // A blocking accept() only returns for a connection, so make one.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for connection in lock(&self.shared.connections).values() {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.connections).insert(id, clone);
        }
        let shared_for_thread = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name("upstream-connection".to_owned()).spawn(move || {
            if let Err(err) = serve(stream, &shared_for_thread) {
                // Resets and shutdowns are how connections normally end here; anything else is worth a line.
                if !matches!(err.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
                {
                    eprintln!("upstream: connection ended with an error: {err}");
                }
            }
            lock(&shared_for_thread.connections).remove(&id);
        });
        if let Err(err) = spawned {
            eprintln!("upstream: cannot spawn a connection thread: {err}");
            lock(&shared.connections).remove(&id);
        }
    }
}

/// Serves requests on one connection until the peer closes it or asks to.
fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(incoming) = wire::read_request(&mut reader, &mut writer)? {
        // Recorded before answering, so once a client has its response the request is in `received()`.
        lock(&shared.received).push(incoming.request.clone());
        let reply = (shared.responder)(&incoming.request);
        wire::write_reply(&mut writer, reply, &incoming.request, incoming.keep_alive)?;
        if !incoming.keep_alive || shared.stopping.load(Ordering::SeqCst) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};

    #[test]
    fn echoes_and_records_the_request() {
        let upstream = EchoUpstream::start().unwrap();
        let mut response = crate::envoy::http_client()
            .post(format!("{}/echo?q=1", upstream.url()))
            .header("x-test", "yes")
            .send("payload")
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
        let echo: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/echo?q=1");
        assert_eq!(echo["headers"]["x-test"], "yes");
        assert_eq!(echo["body"], "payload");
        let received = upstream.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].header("X-Test"), Some("yes"));
        upstream.clear();
        assert!(upstream.received().is_empty());
    }

    #[test]
    fn a_responder_scripts_fixed_replies() {
        let upstream = EchoUpstream::start_with(|req| {
            if req.path == "/missing" {
                Reply::json(404, &serde_json::json!({"error":"nope"}))
            } else {
                Reply::text(201, "made")
            }
        })
        .unwrap();
        let client = crate::envoy::http_client();
        let mut missing = client.get(format!("{}/missing", upstream.url())).call().unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        assert_eq!(missing.body_mut().read_to_string().unwrap(), r#"{"error":"nope"}"#);
        let mut made = client.get(format!("{}/other", upstream.url())).call().unwrap();
        assert_eq!(made.status().as_u16(), 201);
        assert_eq!(made.body_mut().read_to_string().unwrap(), "made");
    }

    #[test]
    fn a_stream_arrives_chunk_by_chunk() {
        let upstream = EchoUpstream::start_with(|_| {
            Reply::sse([(Duration::ZERO, "data: one\n\n"), (Duration::from_millis(300), "data: two\n\n")])
        })
        .unwrap();
        let mut socket = std::net::TcpStream::connect(upstream.addr()).unwrap();
        socket.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let started = Instant::now();
        let mut reader = BufReader::new(socket);
        let mut line = String::new();
        while !line.starts_with("data: one") {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended before the first event");
        }
        // The first event must not wait for the delayed second one.
        assert!(started.elapsed() < Duration::from_millis(250), "first chunk took {:?}", started.elapsed());
        // The body ends at the zero-length chunk; the socket may stay open, so read up to it, not to EOF.
        let mut rest = String::new();
        while !rest.ends_with("\r\n0\r\n\r\n") {
            assert!(reader.read_line(&mut rest).unwrap() > 0, "stream ended early: {rest:?}");
        }
        assert!(rest.contains("data: two"), "{rest}");
    }
}

//! An HTTP/1.1 upstream for tests and the demo: answers each request with JSON describing it (or with a
//! scripted [`Reply`]) and records what it received, so tests can assert on what the filter forwarded.

mod exchange;
mod reply;
mod request;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

pub use reply::{Chunk, Reply};
pub use request::ReceivedRequest;

/// Chooses the reply to each received request.
pub type Responder = Arc<dyn Fn(&ReceivedRequest) -> Reply + Send + Sync>;

/// A background hyper server on its own port and its own thread; stops and closes its connections when
/// dropped.
///
/// Not tiny_http: it parks a burst of new keep-alive connections in a queue that only drains when an
/// earlier connection closes, and Envoy keeps its upstream connections open, so concurrent tests saw
/// requests stall until Envoy's 15 s timeout. Here every connection is its own task.
pub struct EchoUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
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
    /// runs on a thread of its own, so it may sleep or block without holding up other connections.
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
        // One thread drives every connection; responders run on the runtime's blocking pool.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            // Bound here rather than on the server thread so a taken port fails the caller.
            let _context = runtime.enter();
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)?
        };
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { received: Mutex::new(Vec::new()), responder: Arc::new(responder) });
        let (stop, stopped) = oneshot::channel();
        let server = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("upstream-{}", addr.port()))
                .spawn(move || run(runtime, listener, shared, stopped))?
        };
        Ok(EchoUpstream { addr, shared, stop: Some(stop), server: Some(server) })
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Joined so that the port and every connection are closed by the time drop returns.
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves until told to stop, then drops the listener and every connection task with the runtime.
fn run(runtime: Runtime, listener: TcpListener, shared: Arc<Shared>, stopped: oneshot::Receiver<()>) {
    runtime.block_on(async move {
        tokio::spawn(accept(listener, shared));
        // A dropped sender ends the wait as surely as a sent stop.
        let _ = stopped.await;
    });
    // A responder still blocking on its thread is not waited for; its reply has nowhere to go.
    runtime.shutdown_timeout(Duration::ZERO);
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
            Err(err) => {
                // Usually out of file descriptors; pausing lets open connections finish and free some.
                eprintln!("upstream: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves requests on one connection until the peer closes it or asks to.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    // Streamed chunks are small and timed; Nagle would hold one back until the previous is acknowledged.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| exchange::answer(Arc::clone(&shared), request));
    // No timer is given, so hyper applies no header-read timeout: that timeout would also close idle
    // keep-alive connections, which Envoy expects to reuse.
    if let Err(err) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
        if !exchange::peer_went_away(&err) {
            eprintln!("upstream: connection ended with an error: {err}");
        }
    }
}

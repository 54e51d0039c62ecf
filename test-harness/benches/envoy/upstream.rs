//! The upstream every row's Envoy sends to: a hyper HTTP/1.1 server on one tokio thread (the bench process is
//! pinned to the load generator's core). A GET gets a small 200; a POST (the AI rows) gets the mock Anthropic
//! provider's 50-event SSE answer with no delays, each event its own HTTP chunk, in as many writes as asked.
//! The harness's `EchoUpstream` does far more per request (a blocking-pool hop, a record of every request it
//! ever got), so it is not used here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use http_body_util::{BodyExt as _, Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The last POST the upstream got: enough to check that Tollgate's translation is one the real mock accepts.
#[derive(Debug, Clone, Default)]
pub struct LastPost {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    gets: AtomicU64,
    posts: AtomicU64,
    last_post: Mutex<LastPost>,
}

pub struct FastUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FastUpstream {
    /// Serves on `127.0.0.1:<free port>`; `events` is the SSE body a POST gets, each event an HTTP chunk,
    /// sent in `writes` writes (as many as there are events: one write each, as a provider streaming tokens).
    pub fn start(events: Vec<Vec<u8>>, writes: usize) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            let _context = runtime.enter();
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)?
        };
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let per_write = events.len().div_ceil(writes.clamp(1, events.len().max(1))).max(1);
        let events = Stream { events: events.into_iter().map(Bytes::from).collect(), per_write };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("bench-upstream".into()).spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(accept(listener, shared, events));
                    let _ = stopped.await;
                });
            })?
        };
        Ok(FastUpstream { addr, shared, stop: Some(stop), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far: (GETs, POSTs).
    pub fn served(&self) -> (u64, u64) {
        (self.shared.gets.load(Ordering::Relaxed), self.shared.posts.load(Ordering::Relaxed))
    }

    pub fn last_post(&self) -> LastPost {
        self.shared.last_post.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for FastUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The SSE answer: its events, and how many go out in each write.
#[derive(Clone)]
struct Stream {
    events: Arc<[Bytes]>,
    per_write: usize,
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, events: Stream) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let events = events.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(Arc::clone(&shared), events.clone(), request));
            // Errors here are clients going away mid-response when a load run stops.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

type AnswerBody = Either<Full<Bytes>, PacedEvents>;

async fn answer(
    shared: Arc<Shared>,
    events: Stream,
    request: Request<Incoming>,
) -> Result<Response<AnswerBody>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    if head.method != hyper::Method::POST {
        shared.gets.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(b"{\"ok\":true}\n"))));
        response
            .headers_mut()
            .insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        return Ok(response);
    }
    shared.posts.fetch_add(1, Ordering::Relaxed);
    // Overwritten each time: a 5 KB copy per AI request, and the check only needs one.
    *shared.last_post.lock().unwrap_or_else(PoisonError::into_inner) = LastPost {
        path: head.uri.to_string(),
        headers: head
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let mut response = Response::new(Either::Right(PacedEvents { stream: events, next: 0, yielded: false }));
    let headers = response.headers_mut();
    headers.insert("content-type", hyper::header::HeaderValue::from_static("text/event-stream"));
    headers.insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A chunked body that gives hyper `per_write` events and then says "not yet" (waking itself at once), so
/// hyper flushes what it has as one write, with no timer.
pub struct PacedEvents {
    stream: Stream,
    next: usize,
    yielded: bool,
}

impl Body for PacedEvents {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(event) = this.stream.events.get(this.next).cloned() else {
            return Poll::Ready(None);
        };
        if this.next > 0 && this.next.is_multiple_of(this.stream.per_write) && !this.yielded {
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.yielded = false;
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.stream.events.len()
    }
}

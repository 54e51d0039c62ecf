//! A TCP relay in front of a service (the rate limit service, spoken to over HTTP/2) that can make the
//! service look slow or gone without touching it: `Slow` holds every byte the service sends back for a
//! while, `Down` cuts every connection and refuses new ones at once, `Pass` relays as is. A mode change
//! applies to connections already open too, since Envoy keeps its HTTP/2 connection for every call.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Each byte from the service is held this long before it goes on.
    Slow(Duration),
    /// Open connections are cut; new ones are closed as soon as they are accepted.
    Down,
}

struct Shared {
    target: SocketAddr,
    mode: Mutex<Mode>,
    /// Both sockets of every relayed connection, so `Down` can cut them.
    open: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cut_all(&self) {
        for stream in self.open.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A running relay; stops and cuts every connection when dropped.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    /// Relays `127.0.0.1:<free port>` to `target`.
    pub fn start(target: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            mode: Mutex::new(Mode::Pass),
            open: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name(format!("relay-{}", addr.port())).spawn(move || {
                for client in listener.incoming() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(client) = client {
                        if shared.mode() != Mode::Down {
                            let _ = relay(client, &shared);
                        }
                    }
                }
            })?
        };
        Ok(Relay { addr, shared, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
        if mode == Mode::Down {
            self.shared.cut_all();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.cut_all();
        // Wakes the acceptor so it sees `stopping`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Starts relaying one accepted connection, on threads of its own.
fn relay(client: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    let service = TcpStream::connect(shared.target)?;
    let _ = (client.set_nodelay(true), service.set_nodelay(true));
    {
        let mut open = shared.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.push(client.try_clone()?);
        open.push(service.try_clone()?);
    }
    let (to_service, from_client) = (service.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || copy(from_client, to_service));

    // Bytes from the service are stamped with when they may go on, and sent in order at that time.
    let (queue, queued) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader = Arc::clone(shared);
    let mut from_service = service;
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_service.read(&mut buf) {
            let hold = match reader.mode() {
                Mode::Slow(hold) => hold,
                Mode::Pass | Mode::Down => Duration::ZERO,
            };
            if queue.send((Instant::now() + hold, buf.get(..n).unwrap_or_default().to_vec())).is_err() {
                break;
            }
        }
    });
    let mut to_client = client;
    std::thread::spawn(move || {
        for (due, bytes) in queued {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to_client.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
    Ok(())
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

//! An identity provider's JWKS endpoint that can be down (nothing listens on its address: connection
//! refused), slow (answers after a delay) or up, on one fixed address for the test's whole life, so the
//! Envoy cluster pointing at it never changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use tollgate_harness::upstream::{EchoUpstream, Reply};

pub const JWKS_PATH: &str = "/jwks.json";

#[derive(Default)]
struct State {
    jwks: Value,
    delay: Duration,
}

pub struct JwksServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    fetches: Arc<AtomicUsize>,
    server: Option<EchoUpstream>,
}

impl JwksServer {
    /// A server that is down: its address is free (bound once to pick it, then released).
    pub fn down_at_a_free_address(jwks: Value) -> Result<JwksServer> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let state = Arc::new(Mutex::new(State { jwks, delay: Duration::ZERO }));
        Ok(JwksServer { addr, state, fetches: Arc::default(), server: None })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts answering on the address, with the current document and delay.
    pub fn up(&mut self) -> Result<()> {
        if self.server.is_none() {
            let (state, fetches) = (Arc::clone(&self.state), Arc::clone(&self.fetches));
            self.server = Some(EchoUpstream::bind(self.addr, move |request| {
                fetches.fetch_add(1, Ordering::SeqCst);
                let (jwks, delay) = {
                    let state = state.lock().unwrap_or_else(PoisonError::into_inner);
                    (state.jwks.clone(), state.delay)
                };
                // The responder runs on a thread of its own: sleeping holds only this answer back.
                std::thread::sleep(delay);
                match request.path.as_str() {
                    JWKS_PATH => Reply::json(200, &jwks),
                    _ => Reply::text(404, "no such document"),
                }
            })?);
        }
        Ok(())
    }

    /// Stops listening and closes every connection: fetches are refused from now on.
    pub fn down(&mut self) {
        self.server = None;
    }

    /// How long each answer waits before it is sent (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).delay = delay;
    }

    pub fn set_jwks(&self, jwks: Value) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).jwks = jwks;
    }

    /// Requests received while up, answered or not.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

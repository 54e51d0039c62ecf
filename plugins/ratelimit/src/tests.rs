//! Limiter-level tests against the in-memory host: several "workers" are several `RateLimits` compiled
//! from one config and sharing one `MemoryHost` store, as Envoy's worker VMs share one shared-data map.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tollgate_core::testing::MemoryHost;
use tollgate_core::{CasToken, Clock, ConfigPath, Headers, LocalReply, Ports, SharedStore, StoreError};

use crate::{Decision, RateLimits, RawRateLimitConfig, RequestFacts, Reservation};

mod budgets;
mod requests;

fn limits(section: serde_json::Value) -> RateLimits {
    let raw: RawRateLimitConfig = serde_json::from_value(section).unwrap();
    RateLimits::compile(raw, &ConfigPath::root().field("ratelimit")).unwrap()
}

/// A worker: its own compiled config, prepared against the shared host.
fn worker(section: &serde_json::Value, host: &MemoryHost) -> RateLimits {
    let limits = limits(section.clone());
    limits.prepare(host.ports()).unwrap();
    limits
}

fn facts<'a>(headers: &'a Headers, consumer: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        path: "/v1/chat/completions",
        headers,
        consumer,
        group: None,
        model: None,
        client_ip: None,
        prompt_tokens: 0,
        max_tokens: None,
    }
}

fn admitted(decision: Decision) -> Option<Reservation> {
    match decision {
        Decision::Allow { reservation, .. } => Some(reservation),
        Decision::Limit { .. } => None,
    }
}

fn refusal(decision: Decision) -> LocalReply {
    match decision {
        Decision::Limit { reply, .. } => reply,
        Decision::Allow { .. } => panic!("expected a refusal"),
    }
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn body(reply: &LocalReply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap()
}

/// A clock that can also go backwards.
struct HandClock(Cell<SystemTime>);

impl Clock for HandClock {
    fn now(&self) -> SystemTime {
        self.0.get()
    }
}

/// A store that fails every other write with a CAS mismatch (or all of them), as a busy peer would.
struct Conflicting<'a> {
    inner: &'a MemoryHost,
    every: u32,
    writes: Cell<u32>,
}

impl SharedStore for Conflicting<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<CasToken>) -> Result<(), StoreError> {
        let n = self.writes.get() + 1;
        self.writes.set(n);
        if self.every == 0 || !n.is_multiple_of(self.every) {
            return Err(StoreError::CasMismatch);
        }
        self.inner.set(key, value, cas)
    }
}

fn ports_with<'a>(host: &'a MemoryHost, clock: &'a dyn Clock, store: &'a dyn SharedStore) -> Ports<'a> {
    Ports { clock, store, metrics: host }
}

fn rule_section(rule: serde_json::Value) -> serde_json::Value {
    json!({ "rules": [rule], "headers": true })
}

const MINUTE: Duration = Duration::from_secs(60);

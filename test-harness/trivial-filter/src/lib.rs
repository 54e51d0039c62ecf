//! Benchmark fixture, not the product: a wasm HTTP filter that reads one request header (`x-api-key`) and
//! continues. `cargo bench --bench envoy` loads it as row T, the cost of running any wasm filter in Envoy at
//! all, against which Tollgate's own cost is compared.
//!
//! Its configuration, when there is one, is a whole number N: each request then also makes N counter
//! increments (row T+M), which prices one plain host call in Envoy beside the row without them. The
//! configuration `"edits"` makes it remove `x-api-key` and set `x-consumer` instead (row T+H), the two request
//! header edits an API key's check makes; `"sha256"` makes it hash the key's value 16 times (row T+S), a
//! measure of the guest's own compute in Envoy's V8 beside the harness's wasmtime. `"k_calls"` makes the host
//! calls Tollgate's API key + local limit makes per request (row T+K: the whole header map, two clock reads, a
//! shared-data read and compare-and-swap write, four counter increments, the two header edits) and one digest,
//! with none of Tollgate's logic: what K would cost if its own code were free. `"k_essential"` leaves out the
//! counter increments and the second clock read (row T+K5): the five host calls an API key with an exact
//! cross-worker limit cannot do without.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use sha2::Digest;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

/// What each request does beyond reading the header, as the configuration says.
#[derive(Clone, Copy)]
enum Extra {
    Nothing,
    /// N increments of the counter with this id (row T+M).
    Increments(u32, u32),
    /// Remove `x-api-key`, set `x-consumer` (row T+H).
    Edits,
    /// 16 SHA-256 digests of the key (row T+S).
    Hashes,
    /// K's host calls and one digest (row T+K), with the counter's id; without one, only the five calls no
    /// key check with a shared limit can do without (row T+K5).
    KCalls(Option<u32>),
}

thread_local! {
    static EXTRA: Cell<Extra> = const { Cell::new(Extra::Nothing) };
}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = self.get_plugin_configuration().unwrap_or_default();
        let count: u32 = std::str::from_utf8(&text).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
        let extra = match text.as_slice() {
            b"\"edits\"" => Extra::Edits,
            b"\"sha256\"" => Extra::Hashes,
            b"\"k_calls\"" => Extra::KCalls(Some(
                hostcalls::define_metric(MetricType::Counter, "bench_trivial_increments").unwrap_or(0),
            )),
            b"\"k_essential\"" => Extra::KCalls(None),
            _ if count > 0 => Extra::Increments(
                count,
                hostcalls::define_metric(MetricType::Counter, "bench_trivial_increments").unwrap_or(0),
            ),
            _ => Extra::Nothing,
        };
        EXTRA.set(extra);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ReadOneHeader))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ReadOneHeader;

impl Context for ReadOneHeader {}

impl HttpContext for ReadOneHeader {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        // Read and dropped: the host call and the copy into the VM are the cost being measured.
        let key = self.get_http_request_header("x-api-key");
        match EXTRA.get() {
            Extra::Nothing => {}
            Extra::Increments(count, id) => {
                for _ in 0..count {
                    let _ = hostcalls::increment_metric(id, 1);
                }
            }
            Extra::Edits => {
                self.set_http_request_header("x-api-key", None);
                self.set_http_request_header("x-consumer", Some("alice"));
            }
            Extra::Hashes => {
                let mut digest = sha2::Sha256::digest(key.unwrap_or_default().as_bytes());
                for _ in 1..16 {
                    digest = sha2::Sha256::digest(digest);
                }
                std::hint::black_box(digest);
            }
            Extra::KCalls(counter) => {
                let headers = self.get_http_request_headers();
                let _ = self.get_current_time();
                std::hint::black_box(sha2::Sha256::digest(key.unwrap_or_default().as_bytes()));
                if let Ok((value, cas)) = hostcalls::get_shared_data("bench_trivial_slot") {
                    if counter.is_some() {
                        let _ = self.get_current_time();
                    }
                    let _ = hostcalls::set_shared_data(
                        "bench_trivial_slot",
                        Some(&value.unwrap_or_default()),
                        cas,
                    );
                }
                for id in counter.into_iter().flat_map(|id| [id; 4]) {
                    let _ = hostcalls::increment_metric(id, 1);
                }
                self.set_http_request_header("x-api-key", None);
                self.set_http_request_header("x-consumer", Some("alice"));
                std::hint::black_box(headers);
            }
        }
        Action::Continue
    }
}

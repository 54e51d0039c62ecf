//! Per-VM state, owned by the VM's wasmtime `Store` so tests never share it through globals: the
//! contexts and their HTTP messages, pending calls, timers, logs and whatever the current callback
//! exposes to the guest (call response, gRPC message, call data).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::abi::Pairs;
use super::calls::PendingCall;
use super::log::{LogLevel, LogLine};
use super::profile::Profiler;
use super::shared::Shared;

/// A foreign function the guest can call by name: arguments in, result bytes or a status out.
pub type ForeignFunction = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, u32> + Send + Sync>;

/// Property values by path segments (`["request", "path"]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Properties(BTreeMap<Vec<String>, Vec<u8>>);

impl Properties {
    /// Dotted paths split on `.`; use [`Properties::set_path`] for segments that contain dots.
    pub fn set(&mut self, dotted: &str, value: Vec<u8>) {
        self.set_path(dotted.split('.').map(String::from).collect(), value);
    }
    pub fn set_path(&mut self, path: Vec<String>, value: Vec<u8>) {
        self.0.insert(path, value);
    }
    pub fn get(&self, path: &[String]) -> Option<&Vec<u8>> {
        self.0.get(path)
    }
}

/// Where one direction (request or response) of a stream is, as Envoy's filter manager tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Stage {
    #[default]
    NotStarted,
    /// Headers went through; body chunks and trailers are delivered as they come.
    Iterating,
    /// Headers returned Pause: Envoy's StopIteration; later body and trailers still reach the guest.
    HeadersStopped,
    /// A body callback returned Pause: StopIterationAndBuffer, the body accumulates.
    BodyStopped,
    TrailersStopped,
    /// Everything went out (or the direction was abandoned by a local reply or reset).
    Done,
}

/// One direction of an HTTP stream: what the guest sees and edits, plus what went out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Direction {
    pub headers: Pairs,
    /// The body the guest sees: the current chunk plus everything buffered before it.
    pub body: Vec<u8>,
    pub trailers: Pairs,
    pub stage: Stage,
    /// The peer finished sending (end of stream seen by the guest).
    pub input_ended: bool,
    /// The body went on (a body callback continued) and no chunk has come since: there is no body buffer.
    pub body_forwarded: bool,
    /// `proxy_continue_stream` was called for this direction and not yet acted on.
    pub resume: bool,
    pub out_headers: Option<Pairs>,
    pub out_body: Vec<u8>,
    pub out_trailers: Pairs,
    pub out_ended: bool,
}

/// `proxy_send_local_response` arguments, applied after the current callback returns.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Pairs,
    pub grpc_status: i32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StreamState {
    pub request: Direction,
    pub response: Direction,
    pub properties: Properties,
    /// What the guest set with `proxy_set_property`, as Envoy names it in filter state (`wasm.<path>`).
    pub filter_state: BTreeMap<String, Vec<u8>>,
    pub local_reply: Option<LocalReply>,
    pub local_reply_details: Option<String>,
    /// The response going downstream is the filter's local reply, not the upstream's.
    pub replying_locally: bool,
    pub reset: bool,
    /// `proxy_on_log`/`proxy_on_done` ran; waiting for `proxy_done` if on_done returned false.
    pub finishing: bool,
    pub done_called: bool,
    /// Index into the VM's logs when the stream started, to report the stream's own lines.
    pub log_start: usize,
}

/// gRPC data exposed to the guest during a gRPC callback.
#[derive(Debug, Clone, Default)]
pub(crate) struct GrpcScratch {
    pub initial_metadata: Pairs,
    pub trailing_metadata: Pairs,
    pub message: Vec<u8>,
    pub status: u32,
    pub status_message: String,
}

/// An `http_call` response exposed to the guest during `proxy_on_http_call_response`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallResponse {
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
}

/// The data a VM's `Store` carries.
pub(crate) struct VmState {
    pub shared: Shared,
    pub index: usize,
    pub vm_id: String,
    pub log_level: LogLevel,
    pub logs: Vec<LogLine>,
    /// Partial stdout/stderr lines written through WASI, flushed at each newline.
    pub wasi_lines: [Vec<u8>; 2],
    pub vm_config: Vec<u8>,
    pub plugin_config: Vec<u8>,
    pub root_context_id: u32,
    pub next_context_id: u32,
    pub effective_context: u32,
    pub streams: BTreeMap<u32, StreamState>,
    pub properties: Properties,
    pub tick_period_nanos: Option<u64>,
    pub next_tick_nanos: Option<u64>,
    pub pending_calls: BTreeMap<u32, PendingCall>,
    pub call_response: Option<CallResponse>,
    pub grpc: GrpcScratch,
    pub call_data: Vec<u8>,
    pub foreign_functions: HashMap<String, ForeignFunction>,
    pub env: Vec<(String, String)>,
    pub rng_state: u64,
    /// Contexts that called `proxy_done`.
    pub done_requests: Vec<u32>,
    pub route_cache_clears: u32,
    /// Guest time and hostcall counts, for benchmarks.
    pub profile: Profiler,
}

impl VmState {
    pub fn new(shared: Shared, index: usize) -> Self {
        Self {
            shared,
            index,
            vm_id: String::new(),
            log_level: LogLevel::Info,
            logs: Vec::new(),
            wasi_lines: [Vec::new(), Vec::new()],
            vm_config: Vec::new(),
            plugin_config: Vec::new(),
            root_context_id: 1,
            next_context_id: 2,
            effective_context: 1,
            streams: BTreeMap::new(),
            properties: Properties::default(),
            tick_period_nanos: None,
            next_tick_nanos: None,
            pending_calls: BTreeMap::new(),
            call_response: None,
            grpc: GrpcScratch::default(),
            call_data: Vec::new(),
            foreign_functions: HashMap::new(),
            env: Vec::new(),
            rng_state: 0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1),
            done_requests: Vec::new(),
            route_cache_clears: 0,
            profile: Profiler::default(),
        }
    }

    pub fn now_nanos(&self) -> u64 {
        super::shared::lock(&self.shared).now_nanos
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        if level >= self.log_level {
            self.logs.push(LogLine { level, message });
        }
    }

    /// Emits what is left of unterminated stdout/stderr lines once a guest call returns.
    pub fn flush_wasi_lines(&mut self) {
        for (slot, level) in [(0, LogLevel::Info), (1, LogLevel::Error)] {
            let pending = self.wasi_lines.get_mut(slot).map(std::mem::take).unwrap_or_default();
            if !pending.is_empty() {
                self.log(level, String::from_utf8_lossy(&pending).into_owned());
            }
        }
    }

    /// The stream the guest is acting on, if the effective context is a stream.
    pub fn effective_stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.effective_context)
    }

    /// Deterministic bytes for `random_get`: reproducible runs beat real entropy in tests.
    pub fn fill_random(&mut self, out: &mut [u8]) {
        for byte in out {
            self.rng_state ^= self.rng_state << 13;
            self.rng_state ^= self.rng_state >> 7;
            self.rng_state ^= self.rng_state << 17;
            *byte = (self.rng_state >> 24) as u8;
        }
    }
}

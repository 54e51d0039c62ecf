//! A proxy-wasm ABI 0.2.1 host on wasmtime, for tests and offline replay: it loads a module once,
//! starts VMs of it (one per simulated Envoy worker), and drives HTTP streams through them with
//! Envoy-like semantics, on a virtual clock, with scripted answers to outbound calls. A Pause on request
//! headers still lets the body callbacks run, as Envoy does only with the wasm filter's
//! `allow_on_headers_stop_iteration: true` (the launcher's bootstrap sets it; without it Envoy never calls them).
//!
//! ```no_run
//! use tollgate_harness::host::{Host, Request, Response};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::load(tollgate_harness::tollgate_wasm())?;
//! let mut vm = host.plugin(r#"{}"#).start()?;
//! let ex = vm
//!     .send(Request::post("/v1/chat").header("content-type", "application/json").body("{}"))
//!     .respond_with(Response::status(200).body_chunks(["a", "b"]))
//!     .run()?;
//! assert_eq!(ex.downstream.status, 200);
//! # Ok(()) }
//! ```
//!
//! All state lives in each VM's `Store` and in the `Host` (shared data, queues, metrics, the clock,
//! call scripts), never in globals, so tests run in parallel. Only compiled modules are cached
//! process-wide, keyed by path, size and modification time.

mod abi;
mod bytes;
mod calls;
mod error;
mod events;
mod exchange;
mod flow;
mod imports;
mod log;
mod memory;
mod message;
mod plugin;
mod profile;
mod shared;
mod state;
mod vm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{Config, Engine, InstancePre, Module};

pub use bytes::{Body, Chunks};
pub use calls::{CallKind, GrpcReply, OutboundCall, Reply};
pub use error::{HostError, HostResult};
pub use exchange::{Dispatch, Stream};
pub use log::{LogLevel, LogLine};
pub use message::{DownstreamResponse, Exchange, Headers, Request, Response, UpstreamRequest};
pub use plugin::PluginBuilder;
pub use profile::{ExportProfile, GuestProfile};
pub use shared::MetricKind;
pub use vm::Vm;

use shared::{lock, Shared, SharedState};
use state::VmState;

/// A loaded module plus the state its VMs share. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    pre: InstancePre<VmState>,
    shared: Shared,
    /// Import names by hostcall id, to name the counts in a [`GuestProfile`].
    hostcall_names: Vec<String>,
}

impl Host {
    /// Loads and compiles a `.wasm` (compiled once per path and version, process-wide), checks
    /// that every import is provided, and prepares instantiation.
    pub fn load(path: impl AsRef<Path>) -> HostResult<Self> {
        let path = path.as_ref();
        let meta =
            std::fs::metadata(path).map_err(|_| HostError::WasmNotFound { path: path.to_path_buf() })?;
        let engine = engine()?;
        let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
        let cached = lock(module_cache()).get(&key).cloned();
        let module = match cached {
            Some(module) => module,
            None => {
                let module = Module::from_file(&engine, path).map_err(|e| compile_error(path, &e))?;
                lock(module_cache()).insert(key, module.clone());
                module
            }
        };
        Self::from_module(engine, &module)
    }

    /// Builds a host from module bytes (binary or WAT text), uncached — for small test modules.
    pub fn from_bytes(bytes: impl AsRef<[u8]>) -> HostResult<Self> {
        let engine = engine()?;
        let module = Module::new(&engine, bytes).map_err(|e| compile_error(Path::new("<bytes>"), &e))?;
        Self::from_module(engine, &module)
    }

    fn from_module(engine: Engine, module: &Module) -> HostResult<Self> {
        let imports = imports::Imports::new(&engine).map_err(|e| HostError::Instantiate(format!("{e:?}")))?;
        imports.check(module)?;
        let pre =
            imports.linker.instantiate_pre(module).map_err(|e| HostError::Instantiate(format!("{e:?}")))?;
        let shared = Arc::new(Mutex::new(SharedState::default()));
        let hostcall_names = imports.names;
        Ok(Self { inner: Arc::new(HostInner { engine, pre, shared, hostcall_names }) })
    }

    /// Starts configuring VMs of the plugin with this plugin configuration (JSON, usually).
    pub fn plugin(&self, config: impl AsRef<[u8]>) -> PluginBuilder {
        PluginBuilder::new(self.clone(), config.as_ref().to_vec())
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn instance_pre(&self) -> &InstancePre<VmState> {
        &self.inner.pre
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn hostcall_names(&self) -> &[String] {
        &self.inner.hostcall_names
    }

    /// A counter's or gauge's current value, by the name the guest defined.
    pub fn metric(&self, name: &str) -> Option<i64> {
        lock(self.shared()).metric_by_name(name).filter(|m| m.kind != MetricKind::Histogram).map(|m| m.value)
    }

    /// A histogram's samples in recording order (empty if undefined).
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        lock(self.shared()).metric_by_name(name).map(|m| m.samples.clone()).unwrap_or_default()
    }

    /// Every metric: name, kind, value (counters and gauges).
    pub fn metrics(&self) -> Vec<(String, MetricKind, i64)> {
        lock(self.shared()).metrics().iter().map(|m| (m.name.clone(), m.kind, m.value)).collect()
    }

    /// Every outbound call any VM made, oldest first.
    pub fn outbound_calls(&self) -> Vec<OutboundCall> {
        lock(self.shared()).calls.clone()
    }

    /// Answers every later call to `cluster` with `reply` (a `Response`, `GrpcReply`, `Reply::Never`,
    /// or `Reply::After(delay, ..)`). Unscripted calls wait for the test or their timeout.
    pub fn on_call(&self, cluster: &str, reply: impl Into<Reply>) -> &Self {
        lock(self.shared()).scripts.on_cluster(cluster, reply.into());
        self
    }

    /// Decides answers with a closure (checked before per-cluster replies; `None` falls through).
    /// It runs under the host's lock, so it must not call back into the host.
    pub fn respond_to_calls(
        &self,
        responder: impl Fn(&OutboundCall) -> Option<Reply> + Send + Sync + 'static,
    ) -> &Self {
        lock(self.shared()).scripts.respond_with(Arc::new(responder));
        self
    }

    /// Restricts calls to these clusters; others fail with BadArgument, as Envoy fails unknown ones.
    pub fn clusters<I: IntoIterator<Item = S>, S: Into<String>>(&self, clusters: I) -> &Self {
        lock(self.shared()).scripts.set_known_clusters(clusters.into_iter().map(Into::into).collect());
        self
    }

    /// Shared data as the guest sees it: value and CAS.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(self.shared()).get_data(key).ok()
    }

    /// Writes shared data unconditionally (a fresh CAS), e.g. to seed state before a test.
    pub fn set_shared_data(&self, key: &str, value: impl AsRef<[u8]>) {
        // cas 0 never mismatches.
        let _ = lock(self.shared()).set_data(key, value.as_ref().to_vec(), 0);
    }

    /// The virtual clock (starts at 2024-01-01T00:00:00Z).
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(lock(self.shared()).now_nanos)
    }
}

fn compile_error(path: &Path, error: &wasmtime::Error) -> HostError {
    HostError::Compile { path: path.to_path_buf(), message: format!("{error:?}") }
}

/// One engine per process: compiled modules are tied to it, and it holds no test state.
fn engine() -> HostResult<Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            // `perf record` can name the guest's functions: wasmtime writes /tmp/perf-<pid>.map.
            if std::env::var_os("TOLLGATE_WASM_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            // Counting the guest's instructions (wasmtime's fuel: about one unit per wasm instruction) gives
            // a figure no other process on the machine can move; it slows the guest, so it is asked for.
            config.consume_fuel(counts_instructions());
            Engine::new(&config).map_err(|e| format!("{e:?}"))
        })
        .clone()
        .map_err(HostError::Instantiate)
}

/// Whether VMs count the wasm instructions their guest runs (`TOLLGATE_WASM_INSTRUCTIONS=1`): see
/// [`GuestProfile`]'s `instructions`. One engine serves the process, so this holds for every VM in it.
pub fn counts_instructions() -> bool {
    static COUNTS: OnceLock<bool> = OnceLock::new();
    *COUNTS.get_or_init(|| std::env::var_os("TOLLGATE_WASM_INSTRUCTIONS").is_some_and(|v| v == "1"))
}

type ModuleKey = (PathBuf, u64, Option<SystemTime>);

fn module_cache() -> &'static Mutex<HashMap<ModuleKey, Module>> {
    static CACHE: OnceLock<Mutex<HashMap<ModuleKey, Module>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

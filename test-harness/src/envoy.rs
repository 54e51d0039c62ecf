//! Starts a real Envoy with the Tollgate wasm filter for end-to-end tests.
//!
//! Each [`Envoy`] gets its own temp dir holding the rendered bootstrap and the log, binds its listener and
//! admin on `127.0.0.1:0` and reads the ports back from the admin API, so tests run in parallel. Envoy is
//! killed when the value drops; a test that panics first gets the log tail on stderr. It runs as a child
//! process or, with `TOLLGATE_ENVOY_BACKEND=container`, in a Docker container (see [`Backend`]).
//!
//! ```no_run
//! use tollgate_harness::{envoy::Envoy, upstream::EchoUpstream};
//! let upstream = EchoUpstream::start()?;
//! let envoy = Envoy::builder(r#"{"upstream_headers":{"set":{"x-tollgate":"on"}}}"#).upstream(upstream.addr()).start()?;
//! let response = tollgate_harness::envoy::http_client().get(format!("{}/hello", envoy.base_url())).call()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

mod admin;
mod backend;
mod binary;
mod bootstrap;
mod client;
mod container;
mod launch;
mod process;
mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use admin::{http_client, Stats, WASM_CUSTOM_PREFIX};
pub use backend::{container_backend_available, in_ci, Backend, BACKEND_VAR};
pub use binary::envoy_binary;
pub use bootstrap::{Runtime, TemplateError, LISTENER_NAME};
pub use client::Answer;

/// How many log lines an error message or a panicking test shows.
const LOG_TAIL_LINES: usize = 40;

/// Why an Envoy did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no Envoy binary found ({looked}): run ./build.sh test, or set ENVOY_BIN")]
    EnvoyNotFound { looked: String },
    #[error("the filter module {} does not exist: run ./build.sh test (it builds dist/tollgate.wasm), or set TOLLGATE_WASM", path.display())]
    WasmNotFound { path: PathBuf },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// Envoy stopped before it was ready: a bootstrap it refused, or a filter whose `on_configure` failed.
    #[error("Envoy exited during startup ({status}); log tail:\n{}", tail(log, LOG_TAIL_LINES))]
    Exited { status: ExitStatus, log: String },
    #[error("Envoy was not ready after {waited:?} ({reason}); log tail:\n{}", tail(log, LOG_TAIL_LINES))]
    NotReady { waited: Duration, reason: String, log: String },
    /// The container backend was chosen and no Docker engine answers; see [`container_backend_available`].
    #[error("the container backend needs a Docker engine: {reason}")]
    BackendUnavailable { reason: String },
    #[error("{BACKEND_VAR}={value:?}: expected `process` or `container`")]
    UnknownBackend { value: String },
    /// The engine answered but the image could not be built or the container not started.
    #[error("container backend: {0}")]
    Container(String),
}

impl StartError {
    /// Envoy's log, when Envoy got as far as running.
    pub fn log(&self) -> Option<&str> {
        match self {
            StartError::Exited { log, .. } | StartError::NotReady { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// Configures one Envoy; see [`Envoy::builder`].
#[derive(Debug, Clone)]
pub struct EnvoyBuilder {
    filter_config: Option<String>,
    wasm: Option<PathBuf>,
    runtime: Runtime,
    clusters: Vec<(String, SocketAddr)>,
    /// Clusters spoken to over HTTP/2 (gRPC services).
    http2_clusters: Vec<String>,
    cluster_header: Option<String>,
    concurrency: u16,
    log_level: String,
    component_log_level: Option<String>,
    extra_args: Vec<String>,
    ready_timeout: Duration,
    ecds_dir: Option<PathBuf>,
    /// `None`: whatever `TOLLGATE_ENVOY_BACKEND` says.
    backend: Option<Backend>,
    /// Whether dropping the Envoy runs the secrets audit (see [`Envoy::secret_leaks`]).
    audit_secrets: bool,
}

impl EnvoyBuilder {
    /// The `.wasm` Envoy loads; defaults to [`crate::tollgate_wasm`].
    pub fn wasm(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Some(path.into());
        self
    }

    /// Takes the filter from file-based ECDS in `dir` (see [`crate::ecds`]) instead of the bootstrap: the
    /// caller publishes a first version there before `start()`, and later ones while Envoy runs.
    pub fn ecds(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ecds_dir = Some(dir.into());
        self.filter_config = None;
        self
    }

    /// Leaves the wasm filter out, so the launcher itself can be tested with no module built.
    pub fn without_filter(mut self) -> Self {
        self.filter_config = None;
        self
    }

    /// Where the route sends requests (the `upstream` cluster). Without it requests that reach the router
    /// get a 503, since nothing listens on the placeholder address.
    pub fn upstream(self, addr: SocketAddr) -> Self {
        self.cluster(bootstrap::UPSTREAM_CLUSTER, addr)
    }

    /// Adds (or replaces) a static cluster, for filters that call out to other services by cluster name.
    pub fn cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.clusters.retain(|(existing, _)| existing != name);
        self.clusters.push((name.to_owned(), addr));
        self
    }

    /// Adds a static cluster Envoy speaks HTTP/2 to, as a gRPC service (a rate limit service) needs.
    pub fn grpc_cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.http2_clusters.retain(|existing| existing != name);
        self.http2_clusters.push(name.to_owned());
        self.cluster(name, addr)
    }

    /// Routes each request to the cluster named by its `header` (the route's `cluster_header`) rather than to
    /// `upstream`: the filter picks the cluster by setting that header, which proves Envoy re-evaluates the
    /// route after the filter's edits. A request without the header, or naming an unknown cluster, gets an
    /// error from Envoy's router.
    pub fn route_by_header(mut self, header: &str) -> Self {
        self.cluster_header = Some(header.to_owned());
        self
    }

    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Worker threads (`--concurrency`); defaults to 2 so per-worker VM state is exercised.
    pub fn concurrency(mut self, workers: u16) -> Self {
        self.concurrency = workers;
        self
    }

    /// `-l`, e.g. `"debug"`; defaults to `"info"`, which shows the filter's info logs and config errors.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_owned();
        self
    }

    /// `--component-log-level`, e.g. `"wasm:debug,http:trace"`.
    pub fn component_log_level(mut self, levels: &str) -> Self {
        self.component_log_level = Some(levels.to_owned());
        self
    }

    /// Any other Envoy command-line argument, appended as given.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// How long `start()` waits for Envoy to report LIVE; defaults to 30 s.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// No secrets audit when this Envoy drops (the logs it reads stay on): for a test that leaks on purpose
    /// to show the audit works.
    pub fn without_secrets_audit(mut self) -> Self {
        self.audit_secrets = false;
        self
    }

    /// Runs this Envoy on `backend` whatever `TOLLGATE_ENVOY_BACKEND` says.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Starts Envoy and waits until it is LIVE. A filter config that the filter rejects makes Envoy exit at
    /// startup, which comes back as [`StartError::Exited`] carrying the log.
    pub fn start(self) -> Result<Envoy, StartError> {
        launch::start(self)
    }
}

/// A running Envoy, killed and reaped on drop. It may be used and dropped from any thread.
pub struct Envoy {
    process: backend::Running,
    /// `None` only while dropping, once a panicking test has kept the directory for inspection.
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    admin: SocketAddr,
    listener: SocketAddr,
    agent: ureq::Agent,
    secrets: secrets::SecretsAudit,
    audit_secrets: bool,
}

impl std::fmt::Debug for Envoy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envoy")
            .field("pid", &self.process.pid())
            .field("listener", &self.listener)
            .field("admin", &self.admin)
            .finish()
    }
}

impl Envoy {
    /// A builder for an Envoy whose wasm filter gets `filter_config` (the plugin configuration JSON, passed
    /// to the filter verbatim, so invalid JSON can be tested too).
    pub fn builder(filter_config: impl Into<String>) -> EnvoyBuilder {
        EnvoyBuilder {
            filter_config: Some(filter_config.into()),
            wasm: None,
            runtime: Runtime::default(),
            // Port 9 (discard) stands in until `upstream()` is called; nothing answers there.
            clusters: vec![(bootstrap::UPSTREAM_CLUSTER.to_owned(), SocketAddr::from(([127, 0, 0, 1], 9)))],
            http2_clusters: Vec::new(),
            cluster_header: None,
            concurrency: 2,
            log_level: "info".to_owned(),
            component_log_level: None,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(30),
            ecds_dir: None,
            backend: None,
            audit_secrets: true,
        }
    }

    /// `http://127.0.0.1:<listener port>`, with no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listener)
    }

    pub fn listener_addr(&self) -> SocketAddr {
        self.listener
    }

    /// `http://127.0.0.1:<admin port>`, with no trailing slash.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Envoy's pid; on the container backend, its host pid (Envoy is the container's first process), or 0
    /// if it had already exited when the container was inspected.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The Docker container's id on the container backend; `None` on the process backend.
    pub fn container_id(&self) -> Option<&str> {
        self.process.container_id()
    }

    /// False once Envoy has exited on its own (it is never restarted).
    pub fn is_running(&self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// The temp dir holding `envoy.yaml` (the rendered bootstrap) and `envoy.log`.
    pub fn dir(&self) -> &Path {
        self.log_path.parent().unwrap_or(&self.log_path)
    }

    /// Everything Envoy has logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.process.log(&self.log_path)
    }

    /// The listener's access log so far: one line per request, `METHOD PATH STATUS reason=REASON trace=TRACE`
    /// (Envoy writes it out every 200 ms).
    pub fn access_log(&self) -> String {
        read_log(&self.dir().join(launch::ACCESS_LOG))
    }

    /// Registers a client credential sent some other way than [`Envoy::get`] and [`Envoy::post_json`] (which
    /// register the credential headers they send): an SDK's API key, a token a load generator sends.
    pub fn secret(&self, credential: &str) {
        self.secrets.client(credential);
    }

    /// Where a secret this Envoy knows of appears where it must not: the filter's logs (Envoy runs with
    /// `wasm:trace`), the access log, the stats, and, for client credentials, the requests sent upstream
    /// (the router's debug log). Every Envoy runs this check when it drops, and fails the test on a leak.
    pub fn secret_leaks(&self) -> Vec<String> {
        let stats =
            if self.is_running() { self.admin_get("/stats").unwrap_or_default() } else { String::new() };
        self.secrets.leaks(&self.log(), &self.access_log(), &stats)
    }

    /// GETs an admin path such as `/config_dump`, returning the body of a 200.
    pub fn admin_get(&self, path_and_query: &str) -> anyhow::Result<String> {
        let url = format!("{}{path_and_query}", self.admin_url());
        // Admin reads are idempotent: one that failed in transport (a 30 s timeout while an overloaded
        // machine's Envoy was busy swapping a filter, say) is tried once more before the test fails on it.
        let answer = admin::get(&self.agent, &url).or_else(|first| {
            std::thread::sleep(Duration::from_millis(200));
            admin::get(&self.agent, &url).with_context(|| format!("again, after: {first:#}"))
        })?;
        match answer {
            (200, body) => Ok(body),
            (status, body) => anyhow::bail!("GET {url}: {status}: {body}"),
        }
    }

    /// The current counters and gauges.
    pub fn stats(&self) -> anyhow::Result<Stats> {
        Stats::parse(&self.admin_get("/stats?format=json")?)
    }

    /// One counter or gauge by full admin name (`wasmcustom.tollgate_requests_total`); `None` if Envoy
    /// has no such stat yet.
    pub fn counter(&self, name: &str) -> anyhow::Result<Option<u64>> {
        Ok(self.stats()?.get(name))
    }

    /// Polls `counter(name)` until it reaches `at_least`, for metrics a filter bumps after the response
    /// has gone out (in the log phase). Returns the last value seen.
    pub fn wait_for_counter(&self, name: &str, at_least: u64, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.counter(name)?.unwrap_or(0);
            if value >= at_least || Instant::now() >= deadline {
                return Ok(value);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Envoy {
    #[allow(clippy::panic, reason = "a leaked secret fails the test that owns this Envoy")]
    fn drop(&mut self) {
        if self.audit_secrets && !std::thread::panicking() {
            let leaks = self.secret_leaks();
            if !leaks.is_empty() {
                let kept = self.dir.take().map(tempfile::TempDir::keep);
                panic!(
                    "secrets leaked (log and bootstrap kept in {}):\n{}",
                    kept.as_deref().unwrap_or(Path::new("?")).display(),
                    leaks.join("\n")
                );
            }
        }
        if std::thread::panicking() {
            // The failing test's bootstrap and full log outlive it; only the tail goes to stderr.
            let kept = self.dir.take().map(tempfile::TempDir::keep);
            eprintln!(
                "--- Envoy (pid {}) log tail; bootstrap and full log kept in {} ---\n{}",
                self.pid(),
                kept.as_deref().unwrap_or(Path::new("?")).display(),
                tail(&self.log(), LOG_TAIL_LINES)
            );
        }
        // Dropping `process` afterwards kills and reaps Envoy (or removes its container).
    }
}

/// A per-process-unique id for the node name and temp dir prefix, so logs of parallel Envoys are told apart.
fn instance_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("tollgate-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn read_log(path: &Path) -> String {
    std::fs::read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
}

/// The last `lines` lines of `log`.
pub fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all.get(all.len().saturating_sub(lines)..).unwrap_or_default().join("\n")
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}

//! One VM: a wasmtime `Store` and instance of the module, with its root context started. Every
//! guest callback goes through [`Vm::invoke`], which turns a trap into an error carrying the
//! guest's last log lines and marks the VM dead, as Envoy does with a crashed VM.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Instance, Store, Val};

use super::calls::OutboundCall;
use super::error::{HostError, HostResult};
use super::log::{self, LogLevel, LogLine};
use super::message::Exchange;
use super::shared::{lock, MetricKind};
use super::state::VmState;
use super::Host;

/// How many trailing log lines an error message shows.
const ERROR_LOG_LINES: usize = 20;

/// A started VM (one Envoy worker's copy of the plugin). Drive it with [`Vm::send`] or
/// [`Vm::stream`]; read what happened with [`Vm::logs`], [`Vm::metric`], [`Vm::outbound_calls`].
pub struct Vm {
    pub(crate) store: Store<VmState>,
    pub(crate) instance: Instance,
    pub(crate) host: Host,
    dead: Option<String>,
    /// Exchanges of streams whose contexts were deleted, by context id.
    pub(crate) finished: BTreeMap<u32, Exchange>,
}

impl Vm {
    pub(crate) fn instantiate(host: &Host, state: VmState) -> HostResult<Self> {
        let mut store = Store::new(host.engine(), state);
        if super::counts_instructions() {
            // Counted, never limited: the guest may run as long as it does without counting.
            store.set_fuel(u64::MAX).map_err(|e| HostError::Instantiate(format!("{e:?}")))?;
        }
        let instance = host
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| HostError::Instantiate(format!("{e:?}")))?;
        Ok(Self { store, instance, host: host.clone(), dead: None, finished: BTreeMap::new() })
    }

    /// Runs the module's start function, checks the ABI marker, and starts the root context:
    /// `proxy_on_context_create`, `proxy_on_vm_start`, `proxy_on_configure`.
    pub(crate) fn boot(&mut self) -> HostResult<()> {
        if self.has_export("_initialize") {
            self.invoke("_initialize", &[])?;
        } else if self.has_export("_start") {
            self.invoke("_start", &[])?;
        }
        if !self.has_export("proxy_abi_version_0_2_1") && !self.has_export("proxy_abi_version_0_2_0") {
            let exports: Vec<String> =
                self.instance.exports(&mut self.store).map(|e| e.name().to_string()).collect();
            return Err(HostError::AbiVersion { exports: exports.join(", ") });
        }
        let root = self.root_context_id();
        self.invoke("proxy_on_context_create", &[root as i32, 0])?;
        let vm_config_len = self.store.data().vm_config.len() as i32;
        if self.invoke("proxy_on_vm_start", &[root as i32, vm_config_len])? == Some(0) {
            return Err(HostError::VmStartRejected { logs: self.log_tail(usize::MAX) });
        }
        let config_len = self.store.data().plugin_config.len() as i32;
        if self.invoke("proxy_on_configure", &[root as i32, config_len])? == Some(0) {
            return Err(HostError::ConfigRejected { logs: self.log_tail(usize::MAX) });
        }
        self.poll()
    }

    pub(crate) fn has_export(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    /// Calls a guest export with i32 arguments; `Ok(None)` when the export does not exist (every
    /// callback is optional) or returns nothing. Context callbacks make their context effective.
    pub(crate) fn invoke(&mut self, name: &str, args: &[i32]) -> HostResult<Option<i32>> {
        if let Some(reason) = &self.dead {
            return Err(HostError::Dead(reason.clone()));
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        if name.starts_with("proxy_on_") {
            if let Some(context) = args.first() {
                self.store.data_mut().effective_context = *context as u32;
            }
        }
        let ty = func.ty(&self.store);
        let params: Vec<Val> = ty
            .params()
            .zip(args.iter().chain(std::iter::repeat(&0)))
            .map(|(p, a)| match p {
                wasmtime::ValType::I64 => Val::I64(i64::from(*a as u32)),
                _ => Val::I32(*a),
            })
            .collect();
        let mut results = vec![Val::I32(0); ty.results().len()];
        self.store.data_mut().profile.enter(name);
        let fuel = self.store.get_fuel().ok();
        let started = Instant::now();
        let outcome = func.call(&mut self.store, &params, &mut results);
        let elapsed = started.elapsed();
        let instructions = fuel.zip(self.store.get_fuel().ok()).map_or(0, |(before, after)| before - after);
        self.store.data_mut().profile.leave(elapsed, instructions);
        self.store.data_mut().flush_wasi_lines();
        if let Err(error) = outcome {
            let callback =
                format!("{name}({})", args.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            let trap = format!("{error:?}");
            self.dead = Some(format!("{callback}: {}", trap.lines().next().unwrap_or_default()));
            return Err(HostError::Trap { callback, trap, logs: self.log_tail(ERROR_LOG_LINES) });
        }
        Ok(results.first().and_then(|v| v.i32().or_else(|| v.i64().map(|x| x as i32))))
    }

    pub(crate) fn log_tail(&self, n: usize) -> String {
        log::tail(&self.store.data().logs, n)
    }

    /// The root context's id (the plugin context).
    pub fn root_context_id(&self) -> u32 {
        self.store.data().root_context_id
    }

    /// This VM's worker index within its host (0 for the first VM).
    pub fn index(&self) -> usize {
        self.store.data().index
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Every line the guest logged at or above the VM's log level.
    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }

    /// The log as text, one `[level] message` per line — handy in `assert!(.., "{}", vm.log_text())`.
    pub fn log_text(&self) -> String {
        self.log_tail(usize::MAX)
    }

    pub fn clear_logs(&mut self) {
        self.store.data_mut().logs.clear();
    }

    /// The level `proxy_get_log_level` reports; lines below it are dropped.
    pub fn set_log_level(&mut self, level: LogLevel) {
        self.store.data_mut().log_level = level;
    }

    /// A counter's or gauge's value by the name the guest defined it with (shared by all VMs).
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.host.metric(name)
    }

    /// A histogram's recorded samples.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        self.host.histogram(name)
    }

    /// Calls this VM made, oldest first.
    pub fn outbound_calls(&self) -> Vec<OutboundCall> {
        let index = self.index();
        lock(&self.store.data().shared).calls.iter().filter(|c| c.vm == index).cloned().collect()
    }

    /// Tokens of calls still waiting for an answer.
    pub fn pending_calls(&self) -> Vec<u32> {
        self.store.data().pending_calls.keys().copied().collect()
    }

    /// How many times the guest asked to clear the route cache.
    pub fn route_cache_clears(&self) -> u32 {
        self.store.data().route_cache_clears
    }

    /// The virtual time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.store.data().now_nanos())
    }

    /// Sets a VM-level property (dotted path) at runtime.
    pub fn set_property(&mut self, path: &str, value: impl AsRef<[u8]>) {
        self.store.data_mut().properties.set(path, value.as_ref().to_vec());
    }

    /// Host-triggered foreign function event: `proxy_on_foreign_function(root, id, len)` with the
    /// arguments readable as the CallData buffer.
    pub fn on_foreign_function(&mut self, function_id: u32, arguments: &[u8]) -> HostResult<()> {
        self.store.data_mut().call_data = arguments.to_vec();
        let root = self.root_context_id();
        self.invoke("proxy_on_foreign_function", &[root as i32, function_id as i32, arguments.len() as i32])?;
        self.store.data_mut().call_data.clear();
        self.poll()
    }

    /// Kinds of all metrics the guest defined, by name.
    pub fn metric_kinds(&self) -> Vec<(String, MetricKind)> {
        lock(&self.store.data().shared).metrics().iter().map(|m| (m.name.clone(), m.kind)).collect()
    }
}

//! Configuring and starting VMs of a plugin: configuration, root id, properties, log level,
//! foreign functions and how many workers.

use std::sync::Arc;

use super::error::HostResult;
use super::log::LogLevel;
use super::shared::lock;
use super::state::{ForeignFunction, Properties, VmState};
use super::vm::Vm;
use super::Host;

/// Builds VMs of one plugin: `host.plugin(config).root_id("x").property("node.id", "n").start()`.
#[must_use = "call .start() or .start_all()"]
pub struct PluginBuilder {
    host: Host,
    plugin_config: Vec<u8>,
    vm_config: Vec<u8>,
    vm_id: String,
    properties: Properties,
    log_level: LogLevel,
    workers: usize,
    foreign: Vec<(String, ForeignFunction)>,
    env: Vec<(String, String)>,
}

impl PluginBuilder {
    pub(crate) fn new(host: Host, plugin_config: Vec<u8>) -> Self {
        let mut properties = Properties::default();
        for (path, value) in [
            ("plugin_name", "tollgate"),
            ("plugin_root_id", ""),
            ("plugin_vm_id", ""),
            ("node.id", "tollgate-harness"),
            ("node.cluster", "tollgate"),
            ("source.address", "127.0.0.1:50000"),
            ("destination.address", "127.0.0.1:10000"),
        ] {
            properties.set(path, value.as_bytes().to_vec());
        }
        Self {
            host,
            plugin_config,
            vm_config: Vec::new(),
            vm_id: String::new(),
            properties,
            log_level: LogLevel::Info,
            workers: 1,
            foreign: Vec::new(),
            env: Vec::new(),
        }
    }

    /// What `proxy_on_vm_start` reads as the VM configuration.
    pub fn vm_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.vm_config = config.as_ref().to_vec();
        self
    }

    /// The plugin's root id (`plugin_root_id` property).
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.properties.set("plugin_root_id", root_id.as_bytes().to_vec());
        self
    }

    /// The VM id: scopes shared queue names, and is the `plugin_vm_id` property.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = vm_id.to_string();
        self.properties.set("plugin_vm_id", vm_id.as_bytes().to_vec());
        self
    }

    /// The plugin's name (`plugin_name` property).
    pub fn name(mut self, name: &str) -> Self {
        self.properties.set("plugin_name", name.as_bytes().to_vec());
        self
    }

    /// A VM-wide property by dotted path (`"node.id"`); streams can override it.
    pub fn property(mut self, path: &str, value: impl AsRef<[u8]>) -> Self {
        self.properties.set(path, value.as_ref().to_vec());
        self
    }

    /// A VM-wide property by explicit segments, for keys that contain dots.
    pub fn property_path(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        self.properties.set_path(path.iter().map(ToString::to_string).collect(), value.as_ref().to_vec());
        self
    }

    /// The level reported to the guest; lines below it are not captured (default info, as Envoy).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// How many VMs [`PluginBuilder::start_all`] starts (Envoy's `--concurrency`).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// A function the guest can call with `proxy_call_foreign_function(name, ..)`; an error code
    /// 2 reads as BadArgument, 3 as SerializationFailure, anything else as InternalFailure.
    pub fn foreign_function(
        mut self,
        name: &str,
        function: impl Fn(&[u8]) -> Result<Vec<u8>, u32> + Send + Sync + 'static,
    ) -> Self {
        self.foreign.push((name.to_string(), Arc::new(function)));
        self
    }

    /// An environment variable visible through WASI `environ_get`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts one VM: instantiation, `_initialize`, root context, `proxy_on_vm_start`,
    /// `proxy_on_configure` (false is an error carrying the guest's logs).
    pub fn start(self) -> HostResult<Vm> {
        self.start_one()
    }

    /// Starts [`PluginBuilder::workers`] VMs sharing shared data, queues and metrics.
    pub fn start_all(self) -> HostResult<Vec<Vm>> {
        (0..self.workers).map(|_| self.start_one()).collect()
    }

    fn start_one(&self) -> HostResult<Vm> {
        let shared = self.host.shared().clone();
        let index = lock(&shared).next_vm_index();
        let mut state = VmState::new(shared, index);
        state.vm_id = self.vm_id.clone();
        state.log_level = self.log_level;
        state.vm_config = self.vm_config.clone();
        state.plugin_config = self.plugin_config.clone();
        state.properties = self.properties.clone();
        state.env = self.env.clone();
        state.foreign_functions = self.foreign.iter().cloned().collect();
        let mut vm = Vm::instantiate(&self.host, state)?;
        vm.boot()?;
        Ok(vm)
    }
}

//! Whether the filter's wasm VMs came through a fault unharmed, as Envoy 1.40 shows it: the runtime's
//! `wasm.envoy.wasm.runtime.v8.{created,active}` and the process-wide `wasm.wasm_vm_count` unchanged (a VM
//! rebuilt after a failure is a new instance), the plugin's `wasm.tollgate.vm_reload*` counters at zero,
//! and no trap in Envoy's log. Under `FAIL_CLOSED` a trapped VM changes no stat (Envoy answers every later
//! request with 503 `wasm_fail_stream`), so the log and the tests' next successful request are what catch
//! that case.

use anyhow::{ensure, Result};
use tollgate_harness::envoy::Envoy;

const INSTANCE_STATS: [&str; 3] =
    ["wasm.envoy.wasm.runtime.v8.created", "wasm.envoy.wasm.runtime.v8.active", "wasm.wasm_vm_count"];
const RELOAD_STATS: [&str; 4] = [
    "wasm.tollgate.vm_reload",
    "wasm.tollgate.vm_reload_success",
    "wasm.tollgate.vm_reload_failure",
    "wasm.tollgate.vm_reload_backoff",
];
/// What Envoy logs when a guest traps (V8's message for a Rust panic's `unreachable`), and the details of
/// the 503 it answers with afterwards.
const TRAP_MARKS: [&str; 4] = ["panicked", "Uncaught", "RuntimeError", "wasm_fail_stream"];

/// The VM instance stats of a freshly started Envoy.
pub struct VmBaseline {
    instances: Vec<(&'static str, u64)>,
}

impl VmBaseline {
    pub fn take(envoy: &Envoy) -> Result<VmBaseline> {
        let stats = envoy.stats()?;
        let mut instances = Vec::new();
        for name in INSTANCE_STATS {
            let value = stats.get(name).unwrap_or(0);
            ensure!(value > 0, "{name} is {value}: no wasm VM is running");
            instances.push((name, value));
        }
        Ok(VmBaseline { instances })
    }

    /// Fails, naming `after`, if a VM failed, was rebuilt or reloaded since the baseline.
    pub fn check(&self, envoy: &Envoy, after: &str) -> Result<()> {
        ensure!(envoy.is_running(), "Envoy exited after {after}");
        let stats = envoy.stats()?;
        for (name, before) in &self.instances {
            let now = stats.get(name).unwrap_or(0);
            ensure!(now == *before, "after {after}: {name} went from {before} to {now}");
        }
        for name in RELOAD_STATS {
            let now = stats.get(name).unwrap_or(0);
            ensure!(now == 0, "after {after}: {name} is {now}");
        }
        let log = envoy.log();
        for mark in TRAP_MARKS {
            let line = log.lines().find(|line| line.contains(mark));
            ensure!(line.is_none(), "after {after}: Envoy logged {line:?}");
        }
        Ok(())
    }
}

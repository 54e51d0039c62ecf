//! What a VM's guest costs, for benchmarks and host-call audits: the wall time spent inside each
//! guest export the host invokes (hostcalls made from inside it included), and how many times each
//! hostcall was made, attributed to the export that made it. Always on: two clock reads per guest
//! call and one counter increment per hostcall.

use std::collections::BTreeMap;
use std::time::Duration;

use super::vm::Vm;

impl Vm {
    /// Guest time and hostcalls since the VM started or [`Vm::reset_profile`], per guest export.
    pub fn profile(&self) -> GuestProfile {
        self.store.data().profile.snapshot(self.host.hostcall_names())
    }

    /// Starts the profile afresh (the counts of booting the VM included).
    pub fn reset_profile(&mut self) {
        self.store.data_mut().profile.reset();
    }

    /// Wall time spent inside guest exports (and the hostcalls they made) since the last reset:
    /// the filter's cost, without the harness's own work around the calls.
    pub fn guest_time(&self) -> Duration {
        self.store.data().profile.time(|_| true)
    }

    /// [`Vm::guest_time`] inside one export only, e.g. `proxy_on_request_body`.
    pub fn guest_time_in(&self, export: &str) -> Duration {
        self.store.data().profile.time(|name| name == export)
    }

    /// How many times `export` ran since the last reset.
    pub fn guest_calls_of(&self, export: &str) -> u64 {
        self.store.data().profile.calls(|name| name == export)
    }

    /// Drops the exchanges kept for finished streams (what [`Vm::exchange`] returns for them), so
    /// that a benchmark driving millions of requests through one VM runs in constant memory.
    pub fn forget_finished(&mut self) {
        self.finished.clear();
    }
}

/// Accumulated per VM in its `Store`, since the VM started or [`crate::host::Vm::reset_profile`].
#[derive(Debug, Default)]
pub(crate) struct Profiler {
    exports: Vec<ExportStats>,
    /// Index into `exports` of the export running now; hostcalls are charged to it.
    current: Option<usize>,
}

#[derive(Debug)]
struct ExportStats {
    name: String,
    calls: u64,
    time: Duration,
    instructions: u64,
    /// Indexed by hostcall id (registration order, see `imports::Registry`).
    hostcalls: Vec<u64>,
}

impl Profiler {
    /// A guest export is about to run.
    pub fn enter(&mut self, export: &str) {
        let index = match self.exports.iter().position(|e| e.name == export) {
            Some(index) => index,
            None => {
                let name = export.to_string();
                self.exports.push(ExportStats {
                    name,
                    calls: 0,
                    time: Duration::ZERO,
                    instructions: 0,
                    hostcalls: Vec::new(),
                });
                self.exports.len() - 1
            }
        };
        self.current = Some(index);
    }

    /// The export that `enter` announced returned (or trapped) after `elapsed`, having run `instructions`
    /// wasm instructions (0 when they are not counted).
    pub fn leave(&mut self, elapsed: Duration, instructions: u64) {
        if let Some(stats) = self.current.take().and_then(|i| self.exports.get_mut(i)) {
            stats.calls += 1;
            stats.time += elapsed;
            stats.instructions += instructions;
        }
    }

    /// The guest called hostcall `id`.
    pub fn count_hostcall(&mut self, id: usize) {
        let Some(stats) = self.current.and_then(|i| self.exports.get_mut(i)) else {
            return;
        };
        if stats.hostcalls.len() <= id {
            stats.hostcalls.resize(id + 1, 0);
        }
        if let Some(count) = stats.hostcalls.get_mut(id) {
            *count += 1;
        }
    }

    pub fn reset(&mut self) {
        self.exports.clear();
        self.current = None;
    }

    /// Guest time in exports whose name `select` accepts.
    pub fn time(&self, select: impl Fn(&str) -> bool) -> Duration {
        self.exports.iter().filter(|e| select(&e.name)).map(|e| e.time).sum()
    }

    /// How many times exports whose name `select` accepts were called.
    pub fn calls(&self, select: impl Fn(&str) -> bool) -> u64 {
        self.exports.iter().filter(|e| select(&e.name)).map(|e| e.calls).sum()
    }

    /// A snapshot with hostcall ids resolved to names (`names[id]`); ids sharing a name (the two
    /// WASI module names) are added together.
    pub fn snapshot(&self, names: &[String]) -> GuestProfile {
        let exports = self
            .exports
            .iter()
            .map(|e| {
                let mut hostcalls = BTreeMap::new();
                for (id, count) in e.hostcalls.iter().enumerate().filter(|(_, c)| **c > 0) {
                    let name = names.get(id).map_or("?", String::as_str);
                    *hostcalls.entry(name.to_string()).or_insert(0) += count;
                }
                ExportProfile {
                    name: e.name.clone(),
                    calls: e.calls,
                    time: e.time,
                    instructions: e.instructions,
                    hostcalls,
                }
            })
            .collect();
        GuestProfile { exports }
    }
}

/// What the guest of one VM did since it started or its profile was last reset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestProfile {
    /// One entry per guest export called, in order of first call.
    pub exports: Vec<ExportProfile>,
}

/// One guest export (`proxy_on_request_headers`, ...): how often it ran, the time spent inside it,
/// the wasm instructions it ran, and the hostcalls it made, by import name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportProfile {
    pub name: String,
    pub calls: u64,
    pub time: Duration,
    /// Wasm instructions run (wasmtime's fuel), when the host counts them (see
    /// [`counts_instructions`](crate::host::counts_instructions)); 0 otherwise. A machine's load cannot move it.
    pub instructions: u64,
    pub hostcalls: BTreeMap<String, u64>,
}

impl ExportProfile {
    pub fn hostcall_total(&self) -> u64 {
        self.hostcalls.values().sum()
    }
}

impl GuestProfile {
    /// Time inside every guest export.
    pub fn time(&self) -> Duration {
        self.exports.iter().map(|e| e.time).sum()
    }

    /// Wasm instructions run in every guest export (0 unless the host counts them).
    pub fn instructions(&self) -> u64 {
        self.exports.iter().map(|e| e.instructions).sum()
    }

    /// One export's entry, if it ran.
    pub fn export(&self, name: &str) -> Option<&ExportProfile> {
        self.exports.iter().find(|e| e.name == name)
    }

    /// Hostcalls made from all exports, by import name.
    pub fn hostcalls(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for (name, count) in self.exports.iter().flat_map(|e| &e.hostcalls) {
            *total.entry(name.clone()).or_insert(0) += count;
        }
        total
    }

    pub fn hostcall_total(&self) -> u64 {
        self.exports.iter().map(ExportProfile::hostcall_total).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostcalls_are_charged_to_the_running_export() {
        let mut profiler = Profiler::default();
        profiler.enter("proxy_on_request_headers");
        profiler.count_hostcall(2);
        profiler.count_hostcall(2);
        profiler.count_hostcall(0);
        profiler.leave(Duration::from_nanos(500), 0);
        profiler.count_hostcall(1);
        profiler.enter("proxy_on_log");
        profiler.count_hostcall(3);
        profiler.leave(Duration::from_nanos(100), 0);
        let names: Vec<String> = ["proxy_log", "unused", "proxy_get_header_map_value", "proxy_log"]
            .into_iter()
            .map(String::from)
            .collect();
        let profile = profiler.snapshot(&names);
        let headers = profile.export("proxy_on_request_headers").unwrap();
        assert_eq!((headers.calls, headers.time), (1, Duration::from_nanos(500)));
        assert_eq!(headers.hostcalls.get("proxy_get_header_map_value"), Some(&2));
        assert_eq!(profile.hostcalls().get("proxy_log"), Some(&2));
        assert_eq!(profile.hostcall_total(), 4);
        assert_eq!(profile.time(), Duration::from_nanos(600));
        assert_eq!(profiler.time(|n| n.ends_with("_headers")), Duration::from_nanos(500));
        profiler.reset();
        assert_eq!(profiler.snapshot(&names), GuestProfile::default());
    }
}

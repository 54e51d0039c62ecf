use std::cell::{Cell, RefCell};
use std::time::SystemTime;

use hashbrown::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MetricType, Status};
use tollgate_core::{CasToken, Clock, Metric, Metrics, Ports, SharedStore, StoreError};

/// The plugin ports implemented with proxy-wasm host calls. Metric ids are defined on first use and
/// remembered (one map per metric type, so a lookup borrows the name instead of allocating a key), so each
/// name costs one `define_metric` per VM; a counter named by a `Metric` keeps its id itself, so counting it
/// again needs no lookup at all. The clock is read once per `ports()` and again after a shared-data
/// read: the steps of one callback see one instant, except that an instant is never older than state read.
#[derive(Default)]
pub struct HostPorts {
    counters: RefCell<HashMap<String, u32>>,
    gauges: RefCell<HashMap<String, u32>>,
    histograms: RefCell<HashMap<String, u32>>,
    now: Cell<Option<SystemTime>>,
}

impl HostPorts {
    /// Sets a gauge to `value` if that is more than it holds (one read, and a write when it is).
    pub fn raise_gauge(&self, name: &str, value: u64) {
        if let Some(id) = self.metric_id(MetricType::Gauge, name) {
            if hostcalls::get_metric(id).is_ok_and(|current| current >= value) {
                return;
            }
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// The ports for one callback (the clock is read afresh on first use).
    pub fn ports(&self) -> Ports<'_> {
        self.now.set(None);
        Ports { clock: self, store: self, metrics: self }
    }

    fn metric_id(&self, kind: MetricType, name: &str) -> Option<u32> {
        let ids = match kind {
            MetricType::Gauge => &self.gauges,
            MetricType::Histogram => &self.histograms,
            _ => &self.counters,
        };
        if let Some(id) = ids.borrow().get(name) {
            return Some(*id);
        }
        match hostcalls::define_metric(kind, name) {
            Ok(id) => {
                ids.borrow_mut().insert(name.to_string(), id);
                Some(id)
            }
            Err(status) => {
                log::warn!("cannot define metric {name}: {status:?}");
                None
            }
        }
    }
}

impl Clock for HostPorts {
    fn now(&self) -> SystemTime {
        if let Some(now) = self.now.get() {
            return now;
        }
        let now = hostcalls::get_current_time().unwrap_or(SystemTime::UNIX_EPOCH);
        self.now.set(Some(now));
        now
    }
}

impl SharedStore for HostPorts {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError> {
        // What was read may have been written after the cached instant (by another worker): a clock read
        // after this one must not be older than it.
        self.now.set(None);
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Ok(Some((value, CasToken(cas.unwrap_or(0))))),
            Ok((None, _)) => Ok(None),
            Err(status) => Err(StoreError::Unavailable(format!("{status:?}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<CasToken>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas.map(|c| c.0)) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(StoreError::Unavailable(format!("{status:?}"))),
        }
    }
}

impl Metrics for HostPorts {
    fn increment(&self, name: &str, delta: i64) {
        if let Some(id) = self.metric_id(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, delta);
        }
    }

    fn count(&self, metric: &Metric, delta: i64) {
        let id = match metric.host_id() {
            Some(id) => id,
            None => match self.metric_id(MetricType::Counter, metric.name()) {
                Some(id) => {
                    metric.remember_host_id(id);
                    id
                }
                None => return,
            },
        };
        let _ = hostcalls::increment_metric(id, delta);
    }

    fn set_gauge(&self, name: &str, value: u64) {
        if let Some(id) = self.metric_id(MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn record(&self, name: &str, value: u64) {
        if let Some(id) = self.metric_id(MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// Gauge: the largest wasm linear memory of the filter's VMs, in bytes (in Envoy
/// `wasmcustom.tollgate_wasm_memory_bytes`). Envoy reports no memory figure for a wasm VM; a VM raises this one
/// when its memory has grown past the figure the gauge holds, which (memory never shrinks) happens a handful
/// of times in a VM's life. VMs share the gauge, so a VM catching up with a larger one leaves it alone. (Two
/// VMs growing at the same instant may leave the smaller figure until one grows again.)
pub const WASM_MEMORY_GAUGE: &str = "tollgate_wasm_memory_bytes";

thread_local! {
    static PUBLISHED_MEMORY: Cell<usize> = const { Cell::new(0) };
}

/// Publishes the linear memory size if it grew: one wasm instruction and, rarely, one host call.
pub fn publish_memory(ports: &HostPorts) {
    #[cfg(target_arch = "wasm32")]
    let bytes = core::arch::wasm32::memory_size(0).saturating_mul(65_536);
    #[cfg(not(target_arch = "wasm32"))]
    let bytes = 0usize;
    if bytes > PUBLISHED_MEMORY.get() {
        PUBLISHED_MEMORY.set(bytes);
        ports.raise_gauge(WASM_MEMORY_GAUGE, bytes as u64);
    }
}

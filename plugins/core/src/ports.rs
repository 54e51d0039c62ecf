use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

/// Wall-clock time. The filter reads it from the host; tests move it by hand.
pub trait Clock {
    fn now(&self) -> SystemTime;
}

/// The version a `SharedStore` entry had when read, handed back on write for compare-and-swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CasToken(pub u32);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote the key since it was read: read again and retry.
    #[error("compare-and-swap mismatch")]
    CasMismatch,
    #[error("shared store unavailable: {0}")]
    Unavailable(String),
}

/// The prefix of every key Tollgate keeps in shared data. Shared data outlives a plugin version (Envoy keys
/// it by `vm_id`), so a hot-swapped module reads what the one before it wrote: a change to the layout of any
/// value must come with a new prefix (`tollgate/v2/`) and code that reads, or migrates from, the old one.
pub const STORE_PREFIX: &str = "tollgate/v1/";

/// Key-value data shared by every worker of one Envoy (proxy-wasm shared data), with CAS on write.
pub trait SharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError>;
    /// Writes `value`; with `cas`, only if the entry is still at that version.
    fn set(&self, key: &str, value: &[u8], cas: Option<CasToken>) -> Result<(), StoreError>;
}

/// Counters, gauges and histograms that the host exports (Envoy: under `wasmcustom.`).
pub trait Metrics {
    fn increment(&self, name: &str, delta: i64);
    /// Adds to a counter named by a [`Metric`], which a host may let remember its id (see there).
    fn count(&self, metric: &Metric, delta: i64) {
        self.increment(metric.name(), delta);
    }
    fn set_gauge(&self, name: &str, value: u64);
    fn record(&self, name: &str, value: u64);
}

/// A counter's name, built once (a constant or at configure time), and the id its host gave it, kept on
/// first use so a counter bumped on every request costs one host call and no lookup by name. The id is
/// one host's: in wasm, one VM's, whose metric ids stay valid for its life, and a VM's statics and config are
/// its own. Hosts that key metrics by name ignore it.
#[derive(Debug)]
pub struct Metric {
    name: Cow<'static, str>,
    /// The host's id plus one; 0 while unknown.
    id: AtomicU32,
}

impl Metric {
    pub const fn new(name: &'static str) -> Self {
        Metric { name: Cow::Borrowed(name), id: AtomicU32::new(0) }
    }

    pub fn owned(name: String) -> Self {
        Metric { name: Cow::Owned(name), id: AtomicU32::new(0) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id a host remembered here, if any.
    pub fn host_id(&self) -> Option<u32> {
        self.id.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Remembers the host's id (an id of `u32::MAX` is not remembered).
    pub fn remember_host_id(&self, id: u32) {
        if let Some(stored) = id.checked_add(1) {
            self.id.store(stored, Ordering::Relaxed);
        }
    }
}

impl Clone for Metric {
    fn clone(&self) -> Self {
        Metric { name: self.name.clone(), id: AtomicU32::new(self.id.load(Ordering::Relaxed)) }
    }
}

/// The host capabilities a plugin may use while handling one callback.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub clock: &'a dyn Clock,
    pub store: &'a dyn SharedStore,
    pub metrics: &'a dyn Metrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_remembers_its_host_id_and_clones_keep_it() {
        static REQUESTS: Metric = Metric::new("requests");
        assert_eq!(REQUESTS.host_id(), None);
        REQUESTS.remember_host_id(0);
        assert_eq!(REQUESTS.host_id(), Some(0));
        let owned = Metric::owned("consumer.alice".to_string());
        owned.remember_host_id(7);
        assert_eq!(owned.clone().host_id(), Some(7));
        assert_eq!(owned.clone().name(), "consumer.alice");
        let unstorable = Metric::new("x");
        unstorable.remember_host_id(u32::MAX);
        assert_eq!(unstorable.host_id(), None);
    }
}

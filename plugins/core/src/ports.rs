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
    fn set_gauge(&self, name: &str, value: u64);
    fn record(&self, name: &str, value: u64);
}

/// The host capabilities a plugin may use while handling one callback.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub clock: &'a dyn Clock,
    pub store: &'a dyn SharedStore,
    pub metrics: &'a dyn Metrics,
}

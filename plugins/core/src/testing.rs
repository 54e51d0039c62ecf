//! An in-memory host for native plugin tests: a clock moved by hand, a shared store with real CAS
//! semantics, and metrics readable back. Enabled by the `testing` feature (and in this crate's tests).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::{CasToken, Clock, Metrics, Ports, SharedStore, StoreError};

#[derive(Debug)]
pub struct MemoryHost {
    now: Cell<SystemTime>,
    store: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    metrics: RefCell<HashMap<String, i64>>,
}

impl Default for MemoryHost {
    fn default() -> Self {
        MemoryHost {
            now: Cell::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            store: RefCell::default(),
            metrics: RefCell::default(),
        }
    }
}

impl MemoryHost {
    pub fn ports(&self) -> Ports<'_> {
        Ports { clock: self, store: self, metrics: self }
    }

    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }

    /// A counter's total, a gauge's last value or a histogram's last sample; 0 when never touched.
    pub fn metric(&self, name: &str) -> i64 {
        self.metrics.borrow().get(name).copied().unwrap_or(0)
    }
}

impl Clock for MemoryHost {
    fn now(&self) -> SystemTime {
        self.now.get()
    }
}

impl SharedStore for MemoryHost {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError> {
        Ok(self.store.borrow().get(key).map(|(v, cas)| (v.clone(), CasToken(*cas))))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<CasToken>) -> Result<(), StoreError> {
        let mut store = self.store.borrow_mut();
        let current = store.get(key).map_or(0, |(_, c)| *c);
        if let Some(CasToken(expected)) = cas {
            if expected != 0 && expected != current {
                return Err(StoreError::CasMismatch);
            }
        }
        store.insert(key.to_string(), (value.to_vec(), current.wrapping_add(1).max(1)));
        Ok(())
    }
}

impl Metrics for MemoryHost {
    fn increment(&self, name: &str, delta: i64) {
        *self.metrics.borrow_mut().entry(name.to_string()).or_default() += delta;
    }

    fn set_gauge(&self, name: &str, value: u64) {
        self.metrics.borrow_mut().insert(name.to_string(), i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record(&self, name: &str, value: u64) {
        self.set_gauge(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_cas_writes_are_refused() {
        let host = MemoryHost::default();
        host.set("k", b"1", None).unwrap();
        let (_, cas) = host.get("k").unwrap().unwrap();
        host.set("k", b"2", Some(cas)).unwrap();
        assert_eq!(host.set("k", b"3", Some(cas)), Err(StoreError::CasMismatch));
        assert_eq!(host.get("k").unwrap().unwrap().0, b"2");
    }

    #[test]
    fn clock_moves_only_by_hand() {
        let host = MemoryHost::default();
        let t0 = host.now();
        host.advance(Duration::from_secs(5));
        assert_eq!(host.now().duration_since(t0).unwrap(), Duration::from_secs(5));
    }
}

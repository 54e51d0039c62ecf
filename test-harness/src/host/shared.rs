//! State shared by every VM of one host, as Envoy shares it across worker threads: the virtual
//! clock, shared data (with CAS), shared queues, metrics, scripted call replies and the call record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::abi::{HostResult, Status};
use super::calls::{OutboundCall, Scripts};

/// 2024-01-01T00:00:00Z: a fixed start so time-dependent output is reproducible.
pub const EPOCH_START_NANOS: u64 = 1_704_067_200_000_000_000;

/// Locks a host mutex; a test that panicked while holding it has already failed, so a poisoned lock
/// is used as is rather than failing every later test step too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) type Shared = Arc<Mutex<SharedState>>;

/// A metric's kind, as `proxy_define_metric` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: i64,
    pub samples: Vec<u64>,
}

pub(crate) struct SharedQueue {
    pub owner_vm: usize,
    pub owner_context: u32,
    pub items: VecDeque<Vec<u8>>,
}

/// A queue notification waiting for its owner VM to be driven next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueReady {
    pub vm: usize,
    pub context_id: u32,
    pub queue_id: u32,
}

pub(crate) struct SharedState {
    pub now_nanos: u64,
    data: HashMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
    queue_ids: HashMap<(String, String), u32>,
    queues: Vec<SharedQueue>,
    pub ready: Vec<QueueReady>,
    metric_ids: HashMap<String, u32>,
    metrics: Vec<Metric>,
    pub scripts: Scripts,
    pub calls: Vec<OutboundCall>,
    last_token: u32,
    vms: usize,
}

impl Default for SharedState {
    fn default() -> Self {
        Self {
            now_nanos: EPOCH_START_NANOS,
            data: HashMap::new(),
            last_cas: 0,
            queue_ids: HashMap::new(),
            queues: Vec::new(),
            ready: Vec::new(),
            metric_ids: HashMap::new(),
            metrics: Vec::new(),
            scripts: Scripts::default(),
            calls: Vec::new(),
            last_token: 0,
            vms: 0,
        }
    }
}

impl SharedState {
    pub fn next_vm_index(&mut self) -> usize {
        self.vms += 1;
        self.vms - 1
    }

    /// Call tokens are unique across the host so a test can answer any call by token alone.
    pub fn next_token(&mut self) -> u32 {
        self.last_token += 1;
        self.last_token
    }

    pub fn get_data(&self, key: &str) -> HostResult<(Vec<u8>, u32)> {
        self.data.get(key).cloned().ok_or(Status::NotFound)
    }

    /// Envoy's semantics: cas 0 writes unconditionally; a non-zero cas must match the stored one
    /// (a missing key accepts any cas); every write gets a fresh cas.
    pub fn set_data(&mut self, key: &str, value: Vec<u8>, cas: u32) -> HostResult {
        if let Some((_, current)) = self.data.get(key) {
            if cas != 0 && cas != *current {
                return Err(Status::CasMismatch);
            }
        }
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.data.insert(key.to_string(), (value, self.last_cas));
        Ok(())
    }

    /// Registering an existing (vm_id, name) keeps its id and moves ownership to the latest caller.
    pub fn register_queue(&mut self, vm_id: &str, name: &str, vm: usize, context_id: u32) -> u32 {
        let key = (vm_id.to_string(), name.to_string());
        if let Some(id) = self.queue_ids.get(&key).copied() {
            if let Some(q) = self.queue_mut(id) {
                q.owner_vm = vm;
                q.owner_context = context_id;
            }
            return id;
        }
        self.queues.push(SharedQueue { owner_vm: vm, owner_context: context_id, items: VecDeque::new() });
        let id = super::abi::len_u32(self.queues.len());
        self.queue_ids.insert(key, id);
        id
    }

    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> HostResult<u32> {
        self.queue_ids.get(&(vm_id.to_string(), name.to_string())).copied().ok_or(Status::NotFound)
    }

    pub fn enqueue(&mut self, id: u32, value: Vec<u8>) -> HostResult {
        let queue = self.queue_mut(id).ok_or(Status::NotFound)?;
        queue.items.push_back(value);
        let ready = QueueReady { vm: queue.owner_vm, context_id: queue.owner_context, queue_id: id };
        self.ready.push(ready);
        Ok(())
    }

    pub fn dequeue(&mut self, id: u32) -> HostResult<Vec<u8>> {
        let queue = self.queue_mut(id).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }

    fn queue_mut(&mut self, id: u32) -> Option<&mut SharedQueue> {
        self.queues.get_mut((id as usize).checked_sub(1)?)
    }

    /// Takes the queue notifications addressed to one VM.
    pub fn take_ready(&mut self, vm: usize) -> Vec<QueueReady> {
        let (mine, others) = self.ready.drain(..).partition(|r| r.vm == vm);
        self.ready = others;
        mine
    }

    /// Defining an existing name returns its id: every worker's stat is the same stat.
    pub fn define_metric(&mut self, kind: MetricKind, name: &str) -> HostResult<u32> {
        if let Some(id) = self.metric_ids.get(name).copied() {
            let existing = self.metric(id)?;
            return if existing.kind == kind { Ok(id) } else { Err(Status::BadArgument) };
        }
        self.metrics.push(Metric { name: name.to_string(), kind, value: 0, samples: Vec::new() });
        let id = super::abi::len_u32(self.metrics.len());
        self.metric_ids.insert(name.to_string(), id);
        Ok(id)
    }

    pub fn metric(&self, id: u32) -> HostResult<&Metric> {
        self.metrics.get((id as usize).checked_sub(1).ok_or(Status::NotFound)?).ok_or(Status::NotFound)
    }

    pub fn metric_mut(&mut self, id: u32) -> HostResult<&mut Metric> {
        self.metrics.get_mut((id as usize).checked_sub(1).ok_or(Status::NotFound)?).ok_or(Status::NotFound)
    }

    pub fn metric_by_name(&self, name: &str) -> Option<&Metric> {
        self.metric_ids.get(name).and_then(|id| self.metric(*id).ok())
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_cas_is_rejected_and_each_write_bumps_cas() {
        let mut s = SharedState::default();
        s.set_data("k", b"1".to_vec(), 0).unwrap();
        let (_, cas1) = s.get_data("k").unwrap();
        s.set_data("k", b"2".to_vec(), cas1).unwrap();
        assert_eq!(s.set_data("k", b"3".to_vec(), cas1), Err(Status::CasMismatch));
        let (value, cas2) = s.get_data("k").unwrap();
        assert_eq!(value, b"2");
        assert_ne!(cas1, cas2);
    }
}

//! Shared data, shared queues and metrics: state every VM of the host sees, as Envoy's workers do.

use wasmtime::Caller;

use crate::host::abi::{status_of, HostResult, Status};
use crate::host::memory;
use crate::host::shared::{lock, MetricKind};
use crate::host::state::VmState;

use super::Registry;

pub(super) fn register(r: &mut Registry<'_>) -> wasmtime::Result<()> {
    r.env(
        "proxy_get_shared_data",
        |mut c: Caller<'_, VmState>,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_size: i32,
         cas_ptr: i32| {
            let found = memory::read_string(&mut c, key_ptr, key_len)
                .and_then(|key| lock(&c.data().shared).get_data(&key));
            let (value, cas) = match found {
                Ok(found) => found,
                Err(status) => return Ok(status.code()),
            };
            if let Err(status) = memory::write_u32(&mut c, cas_ptr, cas) {
                return Ok(status.code());
            }
            memory::return_bytes(&mut c, &value, ret_ptr, ret_size)
        },
    )?;
    r.env(
        "proxy_set_shared_data",
        |mut c: Caller<'_, VmState>, key_ptr: i32, key_len: i32, ptr: i32, len: i32, cas: i32| -> i32 {
            let result = (|| {
                let key = memory::read_string(&mut c, key_ptr, key_len)?;
                let value = memory::read(&mut c, ptr, len)?;
                lock(&c.data().shared).set_data(&key, value, cas as u32)
            })();
            status_of(result)
        },
    )?;
    r.env(
        "proxy_register_shared_queue",
        |mut c: Caller<'_, VmState>, name_ptr: i32, name_len: i32, ret: i32| -> i32 {
            let result = (|| {
                let name = memory::read_string(&mut c, name_ptr, name_len)?;
                let state = c.data();
                let id = lock(&state.shared).register_queue(
                    &state.vm_id,
                    &name,
                    state.index,
                    state.effective_context,
                );
                memory::write_u32(&mut c, ret, id)
            })();
            status_of(result)
        },
    )?;
    r.env(
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_, VmState>,
         vm_ptr: i32,
         vm_len: i32,
         name_ptr: i32,
         name_len: i32,
         ret: i32|
         -> i32 {
            let result = (|| {
                let vm_id = memory::read_string(&mut c, vm_ptr, vm_len)?;
                let name = memory::read_string(&mut c, name_ptr, name_len)?;
                let id = lock(&c.data().shared).resolve_queue(&vm_id, &name)?;
                memory::write_u32(&mut c, ret, id)
            })();
            status_of(result)
        },
    )?;
    r.env("proxy_enqueue_shared_queue", |mut c: Caller<'_, VmState>, id: i32, ptr: i32, len: i32| -> i32 {
        let result =
            memory::read(&mut c, ptr, len).and_then(|value| lock(&c.data().shared).enqueue(id as u32, value));
        status_of(result)
    })?;
    r.env(
        "proxy_dequeue_shared_queue",
        |mut c: Caller<'_, VmState>, id: i32, ret_ptr: i32, ret_size: i32| {
            let value = lock(&c.data().shared).dequeue(id as u32);
            memory::return_result(&mut c, value, ret_ptr, ret_size)
        },
    )?;
    r.env(
        "proxy_define_metric",
        |mut c: Caller<'_, VmState>, kind: i32, name_ptr: i32, name_len: i32, ret: i32| -> i32 {
            let result = (|| {
                let kind = match kind {
                    0 => MetricKind::Counter,
                    1 => MetricKind::Gauge,
                    2 => MetricKind::Histogram,
                    _ => return Err(Status::BadArgument),
                };
                let name = memory::read_string(&mut c, name_ptr, name_len)?;
                let id = lock(&c.data().shared).define_metric(kind, &name)?;
                memory::write_u32(&mut c, ret, id)
            })();
            status_of(result)
        },
    )?;
    r.env("proxy_increment_metric", |c: Caller<'_, VmState>, id: i32, offset: i64| -> i32 {
        status_of(with_metric(&c, id, |m| match m.kind {
            MetricKind::Counter if offset < 0 => Err(Status::BadArgument),
            MetricKind::Counter | MetricKind::Gauge => {
                m.value = m.value.saturating_add(offset);
                Ok(())
            }
            MetricKind::Histogram => Err(Status::BadArgument),
        }))
    })?;
    r.env("proxy_record_metric", |c: Caller<'_, VmState>, id: i32, value: i64| -> i32 {
        status_of(with_metric(&c, id, |m| {
            match m.kind {
                // Envoy counters only move forward: recording a lower value is a no-op.
                MetricKind::Counter => m.value = m.value.max(value),
                MetricKind::Gauge => m.value = value,
                MetricKind::Histogram => m.samples.push(value as u64),
            }
            Ok(())
        }))
    })?;
    r.env("proxy_get_metric", |mut c: Caller<'_, VmState>, id: i32, ret: i32| -> i32 {
        let value = lock(&c.data().shared).metric(id as u32).and_then(|m| match m.kind {
            MetricKind::Histogram => Err(Status::BadArgument),
            _ => Ok(m.value as u64),
        });
        status_of(value.and_then(|v| memory::write_u64(&mut c, ret, v)))
    })?;
    Ok(())
}

fn with_metric(
    c: &Caller<'_, VmState>,
    id: i32,
    apply: impl FnOnce(&mut crate::host::shared::Metric) -> HostResult,
) -> HostResult {
    let mut shared = lock(&c.data().shared);
    apply(shared.metric_mut(id as u32)?)
}

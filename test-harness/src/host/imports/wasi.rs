//! The WASI preview1 subset Envoy gives proxy-wasm modules: stdout/stderr become log lines, the
//! clocks read the virtual clock, randomness is deterministic, and there is no filesystem.

use wasmtime::Caller;

use crate::host::log::LogLevel;
use crate::host::memory::{self, Ctx};
use crate::host::state::VmState;

use super::Registry;

const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const INVAL: i32 = 28;
const NOSYS: i32 = 52;
const SPIPE: i32 = 70;
const FAULT: i32 = 21;

pub(super) fn register(r: &mut Registry<'_>) -> wasmtime::Result<()> {
    // Envoy accepts both names of preview1.
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        register_in(r, module)?;
    }
    Ok(())
}

fn register_in(r: &mut Registry<'_>, m: &str) -> wasmtime::Result<()> {
    r.func(
        m,
        "fd_write",
        |mut c: Caller<'_, VmState>, fd: i32, iovs: i32, iovs_len: i32, written_ptr: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return BADF;
            }
            let Ok(data) = gather(&mut c, iovs, iovs_len) else {
                return FAULT;
            };
            let written = data.len() as u32;
            capture(c.data_mut(), fd, &data);
            errno(memory::write_u32(&mut c, written_ptr, written).is_ok())
        },
    )?;
    r.func(
        m,
        "fd_read",
        |mut c: Caller<'_, VmState>, fd: i32, _iovs: i32, _len: i32, read_ptr: i32| -> i32 {
            // stdin is empty; nothing else is open.
            if fd != 0 {
                return BADF;
            }
            errno(memory::write_u32(&mut c, read_ptr, 0).is_ok())
        },
    )?;
    r.func(m, "fd_seek", |_c: Caller<'_, VmState>, fd: i32, _offset: i64, _whence: i32, _ret: i32| -> i32 {
        if (0..=2).contains(&fd) {
            SPIPE
        } else {
            BADF
        }
    })?;
    r.func(m, "fd_close", |_c: Caller<'_, VmState>, fd: i32| -> i32 {
        if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            BADF
        }
    })?;
    r.func(m, "fd_fdstat_get", |mut c: Caller<'_, VmState>, fd: i32, ret: i32| -> i32 {
        if !(0..=2).contains(&fd) {
            return BADF;
        }
        // fdstat: filetype u8 (2 = character device), flags u16, rights base/inheriting u64.
        let mut stat = [0u8; 24];
        stat[0] = 2;
        stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        errno(memory::write(&mut c, ret, &stat).is_ok())
    })?;
    r.func(m, "fd_fdstat_set_flags", |_c: Caller<'_, VmState>, _fd: i32, _flags: i32| -> i32 { NOSYS })?;
    r.func(m, "fd_prestat_get", |_c: Caller<'_, VmState>, _fd: i32, _ret: i32| -> i32 { BADF })?;
    r.func(m, "fd_prestat_dir_name", |_c: Caller<'_, VmState>, _fd: i32, _ptr: i32, _len: i32| -> i32 {
        BADF
    })?;
    r.func(m, "environ_sizes_get", |mut c: Caller<'_, VmState>, count_ptr: i32, size_ptr: i32| -> i32 {
        let entries = env_entries(c.data());
        sizes(&mut c, &entries, count_ptr, size_ptr)
    })?;
    r.func(m, "environ_get", |mut c: Caller<'_, VmState>, ptrs: i32, buf: i32| -> i32 {
        let entries = env_entries(c.data());
        fill(&mut c, &entries, ptrs, buf)
    })?;
    r.func(m, "args_sizes_get", |mut c: Caller<'_, VmState>, count_ptr: i32, size_ptr: i32| -> i32 {
        sizes(&mut c, &[], count_ptr, size_ptr)
    })?;
    r.func(m, "args_get", |mut c: Caller<'_, VmState>, ptrs: i32, buf: i32| -> i32 {
        fill(&mut c, &[], ptrs, buf)
    })?;
    r.func(
        m,
        "clock_time_get",
        |mut c: Caller<'_, VmState>, clock: i32, _precision: i64, ret: i32| -> i32 {
            if !(0..=3).contains(&clock) {
                return INVAL;
            }
            let now = c.data().now_nanos();
            errno(memory::write_u64(&mut c, ret, now).is_ok())
        },
    )?;
    r.func(m, "clock_res_get", |mut c: Caller<'_, VmState>, _clock: i32, ret: i32| -> i32 {
        errno(memory::write_u64(&mut c, ret, 1).is_ok())
    })?;
    r.func(m, "random_get", |mut c: Caller<'_, VmState>, ptr: i32, len: i32| -> i32 {
        let mut bytes = vec![0u8; len as u32 as usize];
        c.data_mut().fill_random(&mut bytes);
        errno(memory::write(&mut c, ptr, &bytes).is_ok())
    })?;
    r.func(m, "sched_yield", |_c: Caller<'_, VmState>| -> i32 { SUCCESS })?;
    r.func(m, "poll_oneoff", |_c: Caller<'_, VmState>, _in: i32, _out: i32, _n: i32, _ret: i32| -> i32 {
        NOSYS
    })?;
    r.func(m, "proc_exit", |_c: Caller<'_, VmState>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("guest called proc_exit({code})")))
    })?;
    Ok(())
}

fn errno(ok: bool) -> i32 {
    if ok {
        SUCCESS
    } else {
        FAULT
    }
}

/// Concatenates an iovec array (pairs of u32 pointer and length).
fn gather(c: &mut Ctx<'_>, iovs: i32, iovs_len: i32) -> Result<Vec<u8>, ()> {
    let table = memory::read(c, iovs, iovs_len.saturating_mul(8)).map_err(|_| ())?;
    let mut out = Vec::new();
    for iov in table.chunks_exact(8) {
        let (ptr, len) = iov.split_at(4);
        let ptr = i32::from_le_bytes(ptr.try_into().map_err(|_| ())?);
        let len = i32::from_le_bytes(len.try_into().map_err(|_| ())?);
        out.extend(memory::read(c, ptr, len).map_err(|_| ())?);
    }
    Ok(out)
}

/// stdout lines log at info, stderr at error (Rust panics land there when no hook is set).
fn capture(state: &mut VmState, fd: i32, data: &[u8]) {
    let (slot, level) = if fd == 1 { (0, LogLevel::Info) } else { (1, LogLevel::Error) };
    let Some(pending) = state.wasi_lines.get_mut(slot) else {
        return;
    };
    pending.extend_from_slice(data);
    let mut lines = Vec::new();
    while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=newline).collect();
        lines.push(String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned());
    }
    for line in lines {
        state.log(level, line);
    }
}

fn env_entries(state: &VmState) -> Vec<Vec<u8>> {
    state.env.iter().map(|(k, v)| format!("{k}={v}\0").into_bytes()).collect()
}

fn sizes(c: &mut Ctx<'_>, entries: &[Vec<u8>], count_ptr: i32, size_ptr: i32) -> i32 {
    let total: usize = entries.iter().map(Vec::len).sum();
    let ok = memory::write_u32(c, count_ptr, entries.len() as u32).is_ok()
        && memory::write_u32(c, size_ptr, total as u32).is_ok();
    errno(ok)
}

fn fill(c: &mut Ctx<'_>, entries: &[Vec<u8>], ptrs: i32, buf: i32) -> i32 {
    let mut at = buf;
    for (i, entry) in entries.iter().enumerate() {
        let ok = memory::write_u32(c, ptrs.wrapping_add(4 * i as i32), at as u32).is_ok()
            && memory::write(c, at, entry).is_ok();
        if !ok {
            return FAULT;
        }
        at = at.wrapping_add(entry.len() as i32);
    }
    SUCCESS
}

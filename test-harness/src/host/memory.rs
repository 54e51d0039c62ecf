//! Reading and writing guest memory from inside a hostcall, and handing bytes to the guest through
//! its own allocator (`proxy_on_memory_allocate`, or `malloc`), which is how the ABI returns data.

use wasmtime::{Caller, Extern, Memory};

use super::abi::{len_u32, HostResult, Status};
use super::state::VmState;

pub(crate) type Ctx<'a> = Caller<'a, VmState>;

fn memory(caller: &mut Ctx<'_>) -> HostResult<Memory> {
    caller.get_export("memory").and_then(Extern::into_memory).ok_or(Status::InvalidMemoryAccess)
}

/// Guest pointers and sizes are wasm32 `i32`s holding unsigned values.
fn offset(raw: i32) -> usize {
    raw as u32 as usize
}

pub(crate) fn read(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> HostResult<Vec<u8>> {
    let len = offset(len);
    if len == 0 {
        return Ok(Vec::new());
    }
    let memory = memory(caller)?;
    let start = offset(ptr);
    memory
        .data(&*caller)
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

pub(crate) fn read_string(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> HostResult<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

pub(crate) fn write(caller: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> HostResult {
    let memory = memory(caller)?;
    memory.write(&mut *caller, offset(ptr), bytes).map_err(|_| Status::InvalidMemoryAccess)
}

pub(crate) fn write_u32(caller: &mut Ctx<'_>, ptr: i32, value: u32) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Ctx<'_>, ptr: i32, value: u64) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `data` into a fresh guest allocation and stores its address and size at `ptr_ptr` and
/// `size_ptr`. Empty data is returned as a null pointer, which the SDK reads as "no value".
/// A trap inside the guest allocator is a real failure, so it propagates as an error.
pub(crate) fn return_bytes(
    caller: &mut Ctx<'_>,
    data: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    let addr = if data.is_empty() {
        0
    } else {
        match allocate(caller, len_u32(data.len()))? {
            Some(addr) => addr,
            None => return Ok(Status::InternalFailure.code()),
        }
    };
    let written = (|| {
        if !data.is_empty() {
            write(caller, addr, data)?;
        }
        write_u32(caller, ptr_ptr, addr as u32)?;
        write_u32(caller, size_ptr, len_u32(data.len()))
    })();
    Ok(super::abi::status_of(written))
}

/// Same as [`return_bytes`] for a status-or-data result, the common shape of getter hostcalls.
pub(crate) fn return_result(
    caller: &mut Ctx<'_>,
    data: HostResult<Vec<u8>>,
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    match data {
        Ok(bytes) => return_bytes(caller, &bytes, ptr_ptr, size_ptr),
        Err(status) => Ok(status.code()),
    }
}

fn allocate(caller: &mut Ctx<'_>, size: u32) -> wasmtime::Result<Option<i32>> {
    let func = ["proxy_on_memory_allocate", "malloc"]
        .iter()
        .find_map(|name| caller.get_export(name).and_then(Extern::into_func));
    let Some(func) = func else {
        return Ok(None);
    };
    let typed = func.typed::<i32, i32>(&*caller)?;
    let addr = typed.call(&mut *caller, size as i32)?;
    Ok((addr != 0).then_some(addr))
}

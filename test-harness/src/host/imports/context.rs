//! Hostcalls about the VM and its contexts: logging, time, ticks, properties, effective context,
//! `proxy_done`, foreign functions and `proxy_get_status`.

use wasmtime::Caller;

use crate::host::abi::{split_property_path, status_of, HostResult, Status};
use crate::host::log::LogLevel;
use crate::host::memory::{self, Ctx};
use crate::host::state::{StreamState, VmState};

use super::Registry;

pub(super) fn register(r: &mut Registry<'_>) -> wasmtime::Result<()> {
    r.env("proxy_log", |mut c: Caller<'_, VmState>, level: i32, ptr: i32, len: i32| -> i32 {
        status_of(
            memory::read_string(&mut c, ptr, len).map(|msg| c.data_mut().log(LogLevel::from_raw(level), msg)),
        )
    })?;
    r.env("proxy_get_log_level", |mut c: Caller<'_, VmState>, ret: i32| -> i32 {
        let level = c.data().log_level as u32;
        status_of(memory::write_u32(&mut c, ret, level))
    })?;
    r.env("proxy_get_current_time_nanoseconds", |mut c: Caller<'_, VmState>, ret: i32| -> i32 {
        let now = c.data().now_nanos();
        status_of(memory::write_u64(&mut c, ret, now))
    })?;
    r.env("proxy_set_tick_period_milliseconds", |mut c: Caller<'_, VmState>, period: i32| -> i32 {
        let state = c.data_mut();
        let nanos = u64::from(period as u32) * 1_000_000;
        if nanos == 0 {
            state.tick_period_nanos = None;
            state.next_tick_nanos = None;
        } else {
            state.tick_period_nanos = Some(nanos);
            state.next_tick_nanos = Some(state.now_nanos() + nanos);
        }
        Status::Ok.code()
    })?;
    r.env("proxy_set_effective_context", |mut c: Caller<'_, VmState>, context_id: i32| -> i32 {
        let state = c.data_mut();
        let id = context_id as u32;
        if id == state.root_context_id || state.streams.contains_key(&id) {
            state.effective_context = id;
            Status::Ok.code()
        } else {
            Status::BadArgument.code()
        }
    })?;
    r.env("proxy_done", |mut c: Caller<'_, VmState>| -> i32 {
        let state = c.data_mut();
        let id = state.effective_context;
        state.done_requests.push(id);
        Status::Ok.code()
    })?;
    r.env("proxy_get_status", |mut c: Caller<'_, VmState>, code_ptr: i32, msg_ptr: i32, msg_size: i32| {
        let (code, message) = (c.data().grpc.status, c.data().grpc.status_message.clone());
        if let Err(status) = memory::write_u32(&mut c, code_ptr, code) {
            return Ok(status.code());
        }
        memory::return_bytes(&mut c, message.as_bytes(), msg_ptr, msg_size)
    })?;
    r.env(
        "proxy_call_foreign_function",
        |mut c: Caller<'_, VmState>,
         name_ptr: i32,
         name_len: i32,
         args_ptr: i32,
         args_len: i32,
         ret_ptr: i32,
         ret_size: i32| {
            let result = call_foreign(&mut c, name_ptr, name_len, args_ptr, args_len);
            memory::return_result(&mut c, result, ret_ptr, ret_size)
        },
    )?;
    r.env(
        "proxy_get_property",
        |mut c: Caller<'_, VmState>, path_ptr: i32, path_len: i32, ret_ptr: i32, ret_size: i32| {
            let value = memory::read(&mut c, path_ptr, path_len)
                .and_then(|raw| get_property(c.data_mut(), &split_property_path(&raw)));
            memory::return_result(&mut c, value, ret_ptr, ret_size)
        },
    )?;
    r.env(
        "proxy_set_property",
        |mut c: Caller<'_, VmState>, path_ptr: i32, path_len: i32, ptr: i32, len: i32| -> i32 {
            let result = (|| {
                let path = split_property_path(&memory::read(&mut c, path_ptr, path_len)?);
                let value = memory::read(&mut c, ptr, len)?;
                let state = c.data_mut();
                match state.effective_stream() {
                    Some(stream) => {
                        // Envoy keeps what a stream sets as filter state under `wasm.<path>`.
                        stream.filter_state.insert(format!("wasm.{}", path.join(".")), value.clone());
                        stream.properties.set_path(path, value)
                    }
                    None => state.properties.set_path(path, value),
                }
                Ok(())
            })();
            status_of(result)
        },
    )?;
    // ABI 0.1.0 name for reading the plugin configuration.
    r.env("proxy_get_configuration", |mut c: Caller<'_, VmState>, ret_ptr: i32, ret_size: i32| {
        let config = c.data().plugin_config.clone();
        memory::return_bytes(&mut c, &config, ret_ptr, ret_size)
    })?;
    Ok(())
}

fn call_foreign(
    c: &mut Ctx<'_>,
    name_ptr: i32,
    name_len: i32,
    args_ptr: i32,
    args_len: i32,
) -> HostResult<Vec<u8>> {
    let name = memory::read_string(c, name_ptr, name_len)?;
    let args = memory::read(c, args_ptr, args_len)?;
    let state = c.data_mut();
    if name == "clear_route_cache" {
        state.route_cache_clears += 1;
        return Ok(Vec::new());
    }
    let function = state.foreign_functions.get(&name).cloned().ok_or(Status::NotFound)?;
    function(&args).map_err(|code| match code {
        2 => Status::BadArgument,
        3 => Status::SerializationFailure,
        _ => Status::InternalFailure,
    })
}

/// Stream properties first (set on the request or by the guest), then values Envoy derives from
/// the stream's headers, then the VM's (plugin name, root id, node id, ...).
fn get_property(state: &mut VmState, path: &[String]) -> HostResult<Vec<u8>> {
    if let Some(stream) = state.streams.get(&state.effective_context) {
        if let Some(value) = stream.properties.get(path).cloned().or_else(|| derived(stream, path)) {
            return Ok(value);
        }
    }
    state.properties.get(path).cloned().ok_or(Status::NotFound)
}

fn derived(stream: &StreamState, path: &[String]) -> Option<Vec<u8>> {
    let request = |name: &str| header(&stream.request.headers, name);
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["request", "path"] => request(":path"),
        ["request", "url_path"] => {
            request(":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or_default().to_vec())
        }
        ["request", "host"] => request(":authority"),
        ["request", "method"] => request(":method"),
        ["request", "scheme"] => request(":scheme"),
        ["request", "protocol"] => Some(b"HTTP/1.1".to_vec()),
        ["request", "headers", name] => request(name),
        ["response", "headers", name] => header(&stream.response.headers, name),
        // Envoy serializes integer attributes as 8 little-endian bytes.
        ["response", "code"] => header(&stream.response.headers, ":status")
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<i64>().ok())
            .map(|code| code.to_le_bytes().to_vec()),
        _ => None,
    }
}

fn header(pairs: &[(Vec<u8>, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.clone())
}

//! Hostcalls on the HTTP stream: header maps, body buffers, continuing/closing the stream and
//! local replies. They act on the effective context's stream, as Envoy's do.

use wasmtime::Caller;

use crate::host::abi::{
    self, deserialize_pairs, serialize_pairs, status_of, BufferType, HostResult, MapType, Pairs, Status,
};
use crate::host::memory;
use crate::host::state::{LocalReply, VmState};

use super::Registry;

pub(super) fn register(r: &mut Registry<'_>) -> wasmtime::Result<()> {
    r.env(
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, VmState>, map: i32, ret_ptr: i32, ret_size: i32| {
            let bytes = map_ref(c.data_mut(), map).map(|pairs| serialize_pairs(pairs));
            memory::return_result(&mut c, bytes, ret_ptr, ret_size)
        },
    )?;
    r.env("proxy_get_header_map_size", |mut c: Caller<'_, VmState>, map: i32, ret: i32| -> i32 {
        let size = map_ref(c.data_mut(), map).map(|pairs| abi::len_u32(serialize_pairs(pairs).len()));
        status_of(size.and_then(|size| memory::write_u32(&mut c, ret, size)))
    })?;
    r.env("proxy_set_header_map_pairs", |mut c: Caller<'_, VmState>, map: i32, ptr: i32, len: i32| -> i32 {
        let result = (|| {
            let pairs = deserialize_pairs(&memory::read(&mut c, ptr, len)?)?;
            *map_mut(c.data_mut(), map)? =
                pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
            Ok(())
        })();
        status_of(result)
    })?;
    r.env(
        "proxy_get_header_map_value",
        |mut c: Caller<'_, VmState>, map: i32, key_ptr: i32, key_len: i32, ret_ptr: i32, ret_size: i32| {
            let value = memory::read(&mut c, key_ptr, key_len).and_then(|key| {
                let key = key.to_ascii_lowercase();
                let pairs = map_ref(c.data_mut(), map)?;
                // Envoy returns the first value when a header repeats.
                pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).ok_or(Status::NotFound)
            });
            memory::return_result(&mut c, value, ret_ptr, ret_size)
        },
    )?;
    r.env(
        "proxy_add_header_map_value",
        |mut c: Caller<'_, VmState>, map: i32, key_ptr: i32, key_len: i32, ptr: i32, len: i32| -> i32 {
            status_of(edit(&mut c, map, key_ptr, key_len, Some((ptr, len)), |pairs, key, value| {
                pairs.push((key, value))
            }))
        },
    )?;
    r.env(
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, VmState>, map: i32, key_ptr: i32, key_len: i32, ptr: i32, len: i32| -> i32 {
            status_of(edit(&mut c, map, key_ptr, key_len, Some((ptr, len)), |pairs, key, value| match pairs
                .iter()
                .position(|(k, _)| *k == key)
            {
                Some(first) => {
                    let mut index = 0;
                    pairs.retain(|(k, _)| {
                        index += 1;
                        index - 1 == first || *k != key
                    });
                    if let Some(slot) = pairs.get_mut(first) {
                        slot.1 = value;
                    }
                }
                None => pairs.push((key, value)),
            }))
        },
    )?;
    r.env(
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, VmState>, map: i32, key_ptr: i32, key_len: i32| -> i32 {
            status_of(edit(&mut c, map, key_ptr, key_len, None, |pairs, key, _| {
                pairs.retain(|(k, _)| *k != key)
            }))
        },
    )?;
    r.env(
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, VmState>, buffer: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| {
            let bytes = buffer_ref(c.data_mut(), buffer).map(|data| {
                let start = (start as u32 as usize).min(data.len());
                let end = start.saturating_add(max as u32 as usize).min(data.len());
                data.get(start..end).unwrap_or_default().to_vec()
            });
            memory::return_result(&mut c, bytes, ret_ptr, ret_size)
        },
    )?;
    r.env(
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, VmState>, buffer: i32, start: i32, size: i32, ptr: i32, len: i32| -> i32 {
            let result = (|| {
                let data = memory::read(&mut c, ptr, len)?;
                let target = buffer_mut(c.data_mut(), buffer)?;
                splice(target, start as u32 as usize, size as u32 as usize, data)
            })();
            status_of(result)
        },
    )?;
    r.env("proxy_continue_stream", |mut c: Caller<'_, VmState>, stream: i32| -> i32 {
        status_of(set_flag(c.data_mut(), stream, true))
    })?;
    r.env("proxy_close_stream", |mut c: Caller<'_, VmState>, stream: i32| -> i32 {
        status_of(set_flag(c.data_mut(), stream, false))
    })?;
    // ABI 0.1.0 names.
    r.env("proxy_continue_request", |mut c: Caller<'_, VmState>| -> i32 {
        status_of(set_flag(c.data_mut(), abi::STREAM_HTTP_REQUEST, true))
    })?;
    r.env("proxy_continue_response", |mut c: Caller<'_, VmState>| -> i32 {
        status_of(set_flag(c.data_mut(), abi::STREAM_HTTP_RESPONSE, true))
    })?;
    r.env("proxy_clear_route_cache", |mut c: Caller<'_, VmState>| -> i32 {
        c.data_mut().route_cache_clears += 1;
        Status::Ok.code()
    })?;
    r.env(
        "proxy_send_local_response",
        |mut c: Caller<'_, VmState>,
         status: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         grpc_status: i32|
         -> i32 {
            let result = (|| {
                let reply = LocalReply {
                    status: status as u32,
                    details: memory::read_string(&mut c, details_ptr, details_len)?,
                    body: memory::read(&mut c, body_ptr, body_len)?,
                    headers: deserialize_pairs(&memory::read(&mut c, headers_ptr, headers_len)?)?,
                    grpc_status,
                };
                let stream = c.data_mut().effective_stream().ok_or(Status::NotFound)?;
                stream.local_reply = Some(reply);
                Ok(())
            })();
            status_of(result)
        },
    )?;
    Ok(())
}

fn edit(
    c: &mut Caller<'_, VmState>,
    map: i32,
    key_ptr: i32,
    key_len: i32,
    value: Option<(i32, i32)>,
    apply: impl FnOnce(&mut Pairs, Vec<u8>, Vec<u8>),
) -> HostResult {
    let key = memory::read(c, key_ptr, key_len)?.to_ascii_lowercase();
    let value = match value {
        Some((ptr, len)) => memory::read(c, ptr, len)?,
        None => Vec::new(),
    };
    apply(map_mut(c.data_mut(), map)?, key, value);
    Ok(())
}

/// Header maps exist once their message has started; trailers read as empty until they arrive.
fn map_ref(state: &mut VmState, raw: i32) -> HostResult<&Pairs> {
    Ok(match MapType::from_raw(raw)? {
        MapType::CallResponseHeaders => &state.call_response.as_ref().ok_or(Status::NotFound)?.headers,
        MapType::CallResponseTrailers => &state.call_response.as_ref().ok_or(Status::NotFound)?.trailers,
        MapType::GrpcInitialMetadata => &state.grpc.initial_metadata,
        MapType::GrpcTrailingMetadata => &state.grpc.trailing_metadata,
        _ => map_mut(state, raw)?,
    })
}

/// Only the stream's own maps are writable; call responses and gRPC metadata are read-only.
fn map_mut(state: &mut VmState, raw: i32) -> HostResult<&mut Pairs> {
    let kind = MapType::from_raw(raw)?;
    let stream = state.effective_stream().ok_or(Status::BadArgument)?;
    let started = match kind {
        MapType::ResponseHeaders | MapType::ResponseTrailers => !stream.response.headers.is_empty(),
        _ => !stream.request.headers.is_empty(),
    };
    if !started && matches!(kind, MapType::RequestHeaders | MapType::ResponseHeaders) {
        return Err(Status::BadArgument);
    }
    match kind {
        MapType::RequestHeaders => Ok(&mut stream.request.headers),
        MapType::RequestTrailers => Ok(&mut stream.request.trailers),
        MapType::ResponseHeaders => Ok(&mut stream.response.headers),
        MapType::ResponseTrailers => Ok(&mut stream.response.trailers),
        _ => Err(Status::BadArgument),
    }
}

fn buffer_ref(state: &mut VmState, raw: i32) -> HostResult<&Vec<u8>> {
    Ok(match BufferType::from_raw(raw)? {
        BufferType::CallResponseBody => &state.call_response.as_ref().ok_or(Status::NotFound)?.body,
        BufferType::GrpcReceive => &state.grpc.message,
        BufferType::VmConfiguration => &state.vm_config,
        BufferType::PluginConfiguration => &state.plugin_config,
        BufferType::CallData => &state.call_data,
        BufferType::DownstreamData | BufferType::UpstreamData => return Err(Status::NotFound),
        BufferType::RequestBody | BufferType::ResponseBody => buffer_mut(state, raw)?,
    })
}

fn buffer_mut(state: &mut VmState, raw: i32) -> HostResult<&mut Vec<u8>> {
    let kind = BufferType::from_raw(raw)?;
    let stream = state.effective_stream().ok_or(Status::NotFound)?;
    let direction = match kind {
        BufferType::RequestBody => &mut stream.request,
        BufferType::ResponseBody => &mut stream.response,
        _ => return Err(Status::BadArgument),
    };
    // Envoy drops its pointer to a body the filter let go on: a later trailers callback finds none.
    if direction.body_forwarded {
        return Err(Status::NotFound);
    }
    Ok(&mut direction.body)
}

/// Envoy's `Buffer::copyFrom`: at 0 it drains `size` bytes and prepends the data (so
/// `(0, len, new)` replaces the body); at or past the end it appends; anything else is refused.
fn splice(target: &mut Vec<u8>, start: usize, size: usize, data: Vec<u8>) -> HostResult {
    if start == 0 {
        let drained = size.min(target.len());
        target.splice(..drained, data);
        Ok(())
    } else if start >= target.len() {
        target.extend_from_slice(&data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

/// `resume = true` continues the direction; `false` resets the whole stream.
fn set_flag(state: &mut VmState, stream_type: i32, resume: bool) -> HostResult {
    if stream_type == abi::STREAM_DOWNSTREAM || stream_type == abi::STREAM_UPSTREAM {
        // TCP streams are not modelled by this host.
        return Err(Status::Unimplemented);
    }
    let stream = state.effective_stream().ok_or(Status::NotFound)?;
    match (stream_type, resume) {
        (abi::STREAM_HTTP_REQUEST, true) => stream.request.resume = true,
        (abi::STREAM_HTTP_RESPONSE, true) => stream.response.resume = true,
        (abi::STREAM_HTTP_REQUEST | abi::STREAM_HTTP_RESPONSE, false) => stream.reset = true,
        _ => return Err(Status::BadArgument),
    }
    Ok(())
}

//! The writes the filter makes to a stream, calling the proxy-wasm ABI itself: proxy-wasm's `hostcalls`
//! wrappers panic on any status but `Ok`, and a panic kills the VM. Envoy answers `NotFound` when it holds no
//! buffer or map for the current callback (a trailers callback after the body went on, a head that ended
//! its stream, a head already sent), which is an ordinary outcome here. The declarations are proxy-wasm's
//! own (hostcalls.rs), with the same types, so they bind the same imports.
#![allow(unsafe_code)]

use proxy_wasm::types::{BufferType, MapType, Status};

#[cfg(target_arch = "wasm32")]
mod imports {
    use proxy_wasm::types::{BufferType, MapType, Status, StreamType};

    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_set_buffer_bytes(
            buffer_type: BufferType,
            start: usize,
            size: usize,
            buffer_data: *const u8,
            buffer_size: usize,
        ) -> Status;
        pub fn proxy_replace_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> Status;
        pub fn proxy_remove_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
        ) -> Status;
        pub fn proxy_continue_stream(stream_type: StreamType) -> Status;
    }
}

#[cfg(target_arch = "wasm32")]
fn ok(status: Status) -> Result<(), Status> {
    match status {
        Status::Ok => Ok(()),
        status => Err(status),
    }
}

/// Replaces `size` bytes from `start` of a body buffer with `value` (`proxy_set_buffer_bytes`).
#[cfg(target_arch = "wasm32")]
pub fn set_buffer(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    // SAFETY: the host reads `value.len()` bytes from `value`'s pointer during the call, and writes nothing.
    ok(unsafe { imports::proxy_set_buffer_bytes(buffer, start, size, value.as_ptr(), value.len()) })
}

/// Sets (`Some`) or removes (`None`) a header field (`proxy_replace_header_map_value`,
/// `proxy_remove_header_map_value`).
#[cfg(target_arch = "wasm32")]
pub fn set_map_value(map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
    // SAFETY: the host reads the name's and the value's bytes during the call, and writes nothing.
    ok(unsafe {
        match value {
            Some(value) => imports::proxy_replace_header_map_value(
                map,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            ),
            None => imports::proxy_remove_header_map_value(map, name.as_ptr(), name.len()),
        }
    })
}

/// Resumes the request held in an earlier callback (`proxy_continue_stream`).
#[cfg(target_arch = "wasm32")]
pub fn resume_request() -> Result<(), Status> {
    // SAFETY: no memory is passed.
    ok(unsafe { imports::proxy_continue_stream(proxy_wasm::types::StreamType::HttpRequest) })
}

/// Outside wasm (native unit builds) there is no host: proxy-wasm's own wrappers.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_buffer(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    proxy_wasm::hostcalls::set_buffer(buffer, start, size, value)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn set_map_value(map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
    proxy_wasm::hostcalls::set_map_value(map, name, value)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn resume_request() -> Result<(), Status> {
    proxy_wasm::hostcalls::resume_http_request()
}

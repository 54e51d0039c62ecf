//! Test fixture, not the product: a proxy-wasm module whose behaviour is chosen by its plugin
//! configuration (`key=value;...`) and by the `x-probe-op` request header, so each host-function
//! family of the harness's host can be exercised through the real Rust SDK.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod http;
mod root;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| Box::new(root::ProbeRoot::new(context_id)));
}}

/// Parses `key=value;key=value` configuration.
pub(crate) fn config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

/// Raw imports the SDK does not wrap the way the probe needs (local reply details, WASI random).
pub(crate) mod raw {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_send_local_response(
            status_code: u32,
            details_data: *const u8,
            details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn random_get(buf: *mut u8, len: usize) -> u16;
    }

    /// A local reply with a details string; no extra headers.
    pub fn local_reply_with_details(status: u32, details: &str, body: &[u8]) {
        let empty_map = 0u32.to_le_bytes();
        unsafe {
            proxy_send_local_response(
                status,
                details.as_ptr(),
                details.len(),
                body.as_ptr(),
                body.len(),
                empty_map.as_ptr(),
                empty_map.len(),
                -1,
            );
        }
    }

    pub fn random_bytes(len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        unsafe {
            random_get(buf.as_mut_ptr(), len);
        }
        buf
    }
}

//! Reads a header map whole: one host call, one buffer for all its text. proxy-wasm's `get_map_bytes` makes a
//! `String` and a `Vec` per field (and traps on a status it does not expect); a request head is read on
//! every request, so this module calls the ABI function itself and hands the host's buffer to
//! `Headers::from_serialized`, which keeps it as the headers' text.
#![allow(unsafe_code)]

use proxy_wasm::types::MapType;
use tollgate_core::Headers;

#[cfg(target_arch = "wasm32")]
pub fn read(map: MapType) -> Headers {
    use proxy_wasm::types::Status;

    // The declaration proxy-wasm makes (hostcalls.rs), with the same types: the same import.
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> Status;
    }

    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a length through the two out-pointers, which are valid for writes.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) };
    match status {
        Status::Ok if !data.is_null() => {
            // SAFETY: the host allocated the buffer in this module through `proxy_on_memory_allocate`, which
            // proxy-wasm implements as a forgotten `Vec::<u8>::with_capacity(size)`, and hands it over: it is
            // ours to own and free, exactly as proxy-wasm's own `get_map_bytes` takes it.
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            Headers::from_serialized(bytes)
        }
        Status::Ok => Headers::default(),
        status => {
            log::warn!("cannot read headers ({status:?})");
            Headers::default()
        }
    }
}

/// Outside wasm (native unit builds) there is no host: proxy-wasm's own reader.
#[cfg(not(target_arch = "wasm32"))]
pub fn read(map: MapType) -> Headers {
    match proxy_wasm::hostcalls::get_map_bytes(map) {
        Ok(pairs) => pairs.iter().map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v))).collect(),
        Err(status) => {
            log::warn!("cannot read headers ({status:?})");
            Headers::default()
        }
    }
}

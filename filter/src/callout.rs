use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use tollgate_core::{CallOutcome, OutboundCall};

/// Sends an `http_call`; the token identifies the answer in `on_http_call_response`.
pub fn dispatch(call: &OutboundCall) -> Result<u32, CallOutcome> {
    let mut headers: Vec<(&str, &str)> =
        vec![(":method", &call.method), (":path", &call.path), (":authority", &call.authority)];
    headers.extend(call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = (!call.body.is_empty()).then_some(call.body.as_slice());
    hostcalls::dispatch_http_call(&call.cluster, headers, body, Vec::new(), call.timeout).map_err(|status| {
        CallOutcome::Failed { reason: format!("cannot call cluster {}: {status:?}", call.cluster) }
    })
}

/// Reads the answer to an `http_call` inside `on_http_call_response`. No headers means no answer
/// (timeout, reset or connection failure).
pub fn read_response(num_headers: usize, body_size: usize) -> CallOutcome {
    if num_headers == 0 {
        return CallOutcome::Failed { reason: "no response (timeout or connection failure)".into() };
    }
    let pairs = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default();
    let mut status = 0;
    let mut headers = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let value = String::from_utf8_lossy(&value).into_owned();
        if name == ":status" {
            status = value.parse().unwrap_or(0);
        } else {
            headers.push((name, value));
        }
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    CallOutcome::Response { status, headers, body }
}

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use tollgate_core::{CallOutcome, Callout, GrpcCall, OutboundCall};

/// Sends an `http_call` or a `grpc_call`; the token identifies the answer in `on_http_call_response` or
/// `on_grpc_call_response`.
pub fn dispatch(call: &Callout) -> Result<u32, CallOutcome> {
    match call {
        Callout::Http(call) => dispatch_http(call),
        Callout::Grpc(call) => dispatch_grpc(call),
    }
}

fn dispatch_http(call: &OutboundCall) -> Result<u32, CallOutcome> {
    let mut headers: Vec<(&str, &str)> =
        vec![(":method", &call.method), (":path", &call.path), (":authority", &call.authority)];
    headers.extend(call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = (!call.body.is_empty()).then_some(call.body.as_slice());
    hostcalls::dispatch_http_call(&call.cluster, headers, body, Vec::new(), call.timeout)
        .map_err(|status| cannot_call(&call.cluster, status))
}

fn dispatch_grpc(call: &GrpcCall) -> Result<u32, CallOutcome> {
    hostcalls::dispatch_grpc_call(
        &call.cluster,
        &call.service,
        &call.method,
        Vec::new(),
        Some(&call.message),
        call.timeout,
    )
    .map_err(|status| cannot_call(&call.cluster, status))
}

fn cannot_call(cluster: &str, status: proxy_wasm::types::Status) -> CallOutcome {
    CallOutcome::Failed { reason: format!("cannot call cluster {cluster}: {status:?}") }
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

/// Reads the answer to a `grpc_call` inside `on_grpc_call_response`: status 0 (OK) carries the reply
/// message; any other gRPC status (deadline exceeded, unavailable, ...) is a failure.
pub fn read_grpc_response(status_code: u32, message_size: usize) -> CallOutcome {
    if status_code != 0 {
        return CallOutcome::Failed { reason: format!("gRPC status {status_code}") };
    }
    let body = hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, message_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    CallOutcome::Response { status: 200, headers: Vec::new(), body }
}

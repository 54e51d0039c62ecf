//! Outbound calls: `proxy_http_call` and the gRPC family. Each call is recorded host-wide and gets
//! a pending entry in the VM, answered later by a script, the test, or its deadline.

use std::time::Duration;

use wasmtime::Caller;

use crate::host::abi::{deserialize_pairs, status_of, HostResult, Status, GRPC_UNAVAILABLE};
use crate::host::bytes::Body;
use crate::host::calls::{CallKind, GrpcReply, OutboundCall, PendingCall, Reply};
use crate::host::memory::{self, Ctx};
use crate::host::message::to_headers;
use crate::host::shared::lock;
use crate::host::state::VmState;

use super::Registry;

pub(super) fn register(r: &mut Registry<'_>) -> wasmtime::Result<()> {
    r.env(
        "proxy_http_call",
        |mut c: Caller<'_, VmState>,
         up_ptr: i32,
         up_len: i32,
         h_ptr: i32,
         h_len: i32,
         b_ptr: i32,
         b_len: i32,
         t_ptr: i32,
         t_len: i32,
         timeout_ms: i32,
         ret: i32|
         -> i32 {
            let result = (|| {
                let headers = deserialize_pairs(&memory::read(&mut c, h_ptr, h_len)?)?;
                // Envoy refuses a call it could not route: all three pseudo-headers are required.
                for required in [&b":method"[..], b":path", b":authority"] {
                    if !headers.iter().any(|(k, _)| k == required) {
                        return Err(Status::BadArgument);
                    }
                }
                let call = OutboundCall {
                    kind: CallKind::Http,
                    cluster: memory::read_string(&mut c, up_ptr, up_len)?,
                    headers: to_headers(&headers),
                    body: Body(memory::read(&mut c, b_ptr, b_len)?),
                    trailers: to_headers(&deserialize_pairs(&memory::read(&mut c, t_ptr, t_len)?)?),
                    ..blank(timeout_ms)
                };
                let token = start(c.data_mut(), call)?;
                memory::write_u32(&mut c, ret, token)
            })();
            status_of(result)
        },
    )?;
    r.env(
        "proxy_grpc_call",
        |mut c: Caller<'_, VmState>,
         up_ptr: i32,
         up_len: i32,
         svc_ptr: i32,
         svc_len: i32,
         m_ptr: i32,
         m_len: i32,
         md_ptr: i32,
         md_len: i32,
         msg_ptr: i32,
         msg_len: i32,
         timeout_ms: i32,
         ret: i32|
         -> i32 {
            let result = (|| {
                let mut call = grpc_call(
                    &mut c,
                    [up_ptr, up_len, svc_ptr, svc_len, m_ptr, m_len, md_ptr, md_len],
                    timeout_ms,
                )?;
                call.body = Body(memory::read(&mut c, msg_ptr, msg_len)?);
                let token = start(c.data_mut(), call)?;
                memory::write_u32(&mut c, ret, token)
            })();
            status_of(result)
        },
    )?;
    r.env(
        "proxy_grpc_stream",
        |mut c: Caller<'_, VmState>,
         up_ptr: i32,
         up_len: i32,
         svc_ptr: i32,
         svc_len: i32,
         m_ptr: i32,
         m_len: i32,
         md_ptr: i32,
         md_len: i32,
         ret: i32|
         -> i32 {
            let result = (|| {
                let mut call =
                    grpc_call(&mut c, [up_ptr, up_len, svc_ptr, svc_len, m_ptr, m_len, md_ptr, md_len], 0)?;
                call.kind = CallKind::GrpcStream;
                let token = start(c.data_mut(), call)?;
                memory::write_u32(&mut c, ret, token)
            })();
            status_of(result)
        },
    )?;
    r.env(
        "proxy_grpc_send",
        |mut c: Caller<'_, VmState>, token: i32, ptr: i32, len: i32, _end: i32| -> i32 {
            let result = (|| {
                let message = memory::read(&mut c, ptr, len)?;
                let state = c.data_mut();
                let token = token as u32;
                match state.pending_calls.get(&token) {
                    Some(p) if p.kind == CallKind::GrpcStream => {}
                    Some(_) => return Err(Status::BadArgument),
                    None => return Err(Status::NotFound),
                }
                let mut shared = lock(&state.shared);
                let call =
                    shared.calls.iter_mut().find(|call| call.token == token).ok_or(Status::NotFound)?;
                call.messages.push(Body(message));
                Ok(())
            })();
            status_of(result)
        },
    )?;
    r.env("proxy_grpc_cancel", |mut c: Caller<'_, VmState>, token: i32| -> i32 {
        let removed = c.data_mut().pending_calls.remove(&(token as u32));
        if removed.is_some() { Status::Ok } else { Status::NotFound }.code()
    })?;
    // Closing a stream only half-closes it (the remote may still answer); closing a unary call cancels it.
    r.env("proxy_grpc_close", |mut c: Caller<'_, VmState>, token: i32| -> i32 {
        let pending = &mut c.data_mut().pending_calls;
        match pending.get(&(token as u32)).map(|p| p.kind) {
            Some(CallKind::GrpcStream) => Status::Ok.code(),
            Some(_) => {
                pending.remove(&(token as u32));
                Status::Ok.code()
            }
            None => Status::NotFound.code(),
        }
    })?;
    Ok(())
}

fn blank(timeout_ms: i32) -> OutboundCall {
    OutboundCall {
        token: 0,
        kind: CallKind::Http,
        context_id: 0,
        vm: 0,
        cluster: String::new(),
        headers: Vec::new(),
        body: Body::default(),
        trailers: Vec::new(),
        service: String::new(),
        method: String::new(),
        messages: Vec::new(),
        timeout: (timeout_ms != 0).then(|| Duration::from_millis(u64::from(timeout_ms as u32))),
        at_nanos: 0,
    }
}

/// Reads the (upstream, service, method, metadata) arguments shared by the gRPC hostcalls.
fn grpc_call(c: &mut Ctx<'_>, args: [i32; 8], timeout_ms: i32) -> HostResult<OutboundCall> {
    let [up_ptr, up_len, svc_ptr, svc_len, m_ptr, m_len, md_ptr, md_len] = args;
    Ok(OutboundCall {
        kind: CallKind::Grpc,
        cluster: memory::read_string(c, up_ptr, up_len)?,
        service: memory::read_string(c, svc_ptr, svc_len)?,
        method: memory::read_string(c, m_ptr, m_len)?,
        headers: to_headers(&deserialize_pairs(&memory::read(c, md_ptr, md_len)?)?),
        ..blank(timeout_ms)
    })
}

/// Records the call host-wide, asks the scripts how to answer, and leaves it pending in this VM.
fn start(state: &mut VmState, mut call: OutboundCall) -> HostResult<u32> {
    let shared = state.shared.clone();
    let mut shared = lock(&shared);
    // Envoy refuses an HTTP call to an unknown cluster at once, but creates gRPC clients without checking
    // the cluster (`skip_cluster_check`), so a gRPC call to one is accepted and then fails as unavailable.
    let known = shared.scripts.knows_cluster(&call.cluster);
    if !known && call.kind == CallKind::Http {
        return Err(Status::BadArgument);
    }
    let token = shared.next_token();
    let now = shared.now_nanos;
    call.token = token;
    call.at_nanos = now;
    call.context_id = state.effective_context;
    call.vm = state.index;
    let reply = if known {
        shared.scripts.reply_for(&call)
    } else {
        Some(Reply::Grpc(GrpcReply::error(GRPC_UNAVAILABLE, "no healthy upstream")))
    };
    shared.calls.push(call.clone());
    drop(shared);
    let deadline = call.timeout.map(|t| now.saturating_add(t.as_nanos() as u64));
    let scheduled = schedule(now, reply);
    let pending = PendingCall { token, context_id: call.context_id, kind: call.kind, deadline, scheduled };
    state.pending_calls.insert(token, pending);
    Ok(token)
}

fn schedule(now: u64, reply: Option<Reply>) -> Option<(u64, Reply)> {
    match reply? {
        Reply::Never => None,
        Reply::After(delay, reply) => schedule(now.saturating_add(delay.as_nanos() as u64), Some(*reply)),
        reply => Some((now, reply)),
    }
}

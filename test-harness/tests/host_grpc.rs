//! gRPC calls and streams: recording, scripted replies, failures with proxy_get_status, timeouts.

use std::time::Duration;

use tollgate_harness::host::{CallKind, GrpcReply, Host, Reply, Request};

fn host() -> anyhow::Result<Host> {
    Ok(Host::load(tollgate_harness::probe_wasm())?)
}

#[test]
fn unary_call_is_recorded_and_its_message_delivered() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call("rls", GrpcReply::ok("pong"));
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(Request::get("/g").header("x-probe-op", "grpc-call")).run()?;
    let call = &ex.calls[0];
    assert_eq!(call.kind, CallKind::Grpc);
    assert_eq!(
        (call.cluster.as_str(), call.service.as_str(), call.method.as_str()),
        ("rls", "probe.Limits", "Check")
    );
    assert_eq!(call.body.as_str(), "ping");
    assert_eq!(call.header("x-md"), Some("1"));
    assert_eq!(call.timeout, Some(Duration::from_secs(2)));
    assert_eq!(ex.upstream.and_then(|u| u.header("x-grpc").map(String::from)), Some("pong".into()));
    Ok(())
}

#[test]
fn failed_call_reports_status_and_message() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call("rls", GrpcReply::error(8, "over limit"));
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(Request::get("/g").header("x-probe-op", "grpc-call")).run()?;
    assert_eq!(ex.downstream.status, 503);
    assert_eq!(ex.downstream.header("x-grpc-status"), Some("8:over limit"));
    Ok(())
}

#[test]
fn unanswered_call_closes_with_deadline_exceeded() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call("rls", Reply::Never);
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(Request::get("/g").header("x-probe-op", "grpc-call")).run()?;
    assert_eq!(ex.downstream.header("x-grpc-status"), Some("4:deadline exceeded"));
    Ok(())
}

#[test]
fn stream_gets_metadata_messages_and_close_in_order() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let mut s = vm.stream(Request::get("/g").header("x-probe-op", "grpc-stream"))?;
    s.send_request()?;
    let call = s.vm().outbound_calls()[0].clone();
    assert_eq!(call.kind, CallKind::GrpcStream);
    assert_eq!(call.messages.iter().map(|m| m.as_str()).collect::<Vec<_>>(), ["hello"]);
    let reply = GrpcReply {
        initial_metadata: vec![("x-init".into(), "a".into())],
        messages: vec!["one".into(), "two".into()],
        trailing_metadata: vec![("x-trail".into(), "b".into())],
        ..GrpcReply::default()
    };
    s.vm().complete_grpc_call(call.token, reply)?;
    assert!(s.reached_upstream(), "closed stream resumed the request");
    let id = s.context_id();
    let t = call.token;
    let lines: Vec<String> = s
        .exchange()
        .logs
        .iter()
        .map(|l| l.message.clone())
        .filter(|m| m.contains(&format!("grpc {t} ")))
        .collect();
    assert_eq!(
        lines,
        [
            format!("stream {id} grpc {t} initial metadata 1: [(\"x-init\", [97])]"),
            format!("stream {id} grpc {t} message: one"),
            format!("stream {id} grpc {t} message: two"),
            format!("stream {id} grpc {t} trailing metadata 1"),
            format!("stream {id} grpc {t} closed with 0"),
        ]
    );
    Ok(())
}

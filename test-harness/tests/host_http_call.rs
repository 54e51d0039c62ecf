//! proxy_http_call: recording, scripted and manual answers to the right context, and timeouts.

use std::time::Duration;

use tollgate_harness::host::{CallKind, Host, Reply, Request, Response};

fn host() -> anyhow::Result<Host> {
    Ok(Host::load(tollgate_harness::probe_wasm())?)
}

fn call_request() -> Request {
    call_to("auth")
}

fn call_to(cluster: &str) -> Request {
    Request::get("/api")
        .header("x-probe-op", "http-call")
        .header("x-cluster", cluster)
        .header("x-timeout-ms", "3000")
}

#[test]
fn scripted_answer_is_delivered_to_the_calling_stream() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call("auth", Response::status(200).header("x-h", "v").body("alice"));
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(call_request()).run()?;
    let call = &ex.calls[0];
    assert_eq!(call.kind, CallKind::Http);
    assert_eq!(call.cluster, "auth");
    assert_eq!(call.context_id, ex.context_id);
    assert_eq!(call.header(":path"), Some("/check"));
    assert_eq!(call.header("x-from"), Some("probe"));
    assert_eq!(call.body.as_str(), "who?");
    assert_eq!(call.timeout, Some(Duration::from_secs(3)));
    let up = ex.upstream.expect("resumed after the call");
    assert_eq!(up.header("x-auth"), Some("alice"));
    let id = ex.context_id;
    assert!(ex
        .logs
        .iter()
        .any(|l| l.message == format!("stream {id} got call {} response: headers=2 body=5", call.token)));
    Ok(())
}

#[test]
fn non_200_answer_becomes_a_local_reply() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call("auth", Response::status(401).body("nope"));
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(call_request()).run()?;
    assert!(ex.upstream.is_none());
    assert_eq!(ex.downstream.status, 403);
    assert_eq!(ex.downstream.header("x-call-status"), Some("401"));
    assert_eq!(ex.downstream.body_str(), "nope");
    Ok(())
}

#[test]
fn a_call_that_never_answers_times_out_at_its_deadline() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call("auth", Reply::Never);
    let mut vm = host.plugin("").start()?;
    let mut s = vm.stream(call_request())?;
    s.send_request()?;
    s.advance(Duration::from_millis(2999))?;
    assert!(s.request_paused(), "still waiting before the deadline");
    s.advance(Duration::from_millis(1))?;
    let ex = s.exchange();
    assert_eq!(ex.downstream.status, 504);
    assert_eq!(ex.downstream.header("x-call"), Some("timeout"));
    Ok(())
}

#[test]
fn run_waits_on_the_virtual_clock_for_delayed_answers_and_timeouts() -> anyhow::Result<()> {
    let host = host()?;
    host.on_call(
        "auth",
        Reply::After(Duration::from_secs(2), Box::new(Response::status(200).body("late").into())),
    );
    host.on_call("slow", Reply::After(Duration::from_secs(10), Box::new(Response::status(200).into())));
    let mut vm = host.plugin("").start()?;
    let before = vm.now();
    let ex = vm.send(call_request()).run()?;
    assert_eq!(ex.upstream.and_then(|u| u.header("x-auth").map(String::from)), Some("late".into()));
    assert_eq!(vm.now().duration_since(before)?, Duration::from_secs(2));
    let ex = vm.send(call_to("slow")).run()?;
    assert_eq!(ex.downstream.status, 504, "the 3s timeout wins over a 10s answer");
    Ok(())
}

#[test]
fn the_test_can_answer_a_pending_call_by_token() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let mut s = vm.stream(call_request())?;
    s.send_request()?;
    let token = s.vm().outbound_calls()[0].token;
    assert_eq!(s.vm().pending_calls(), vec![token]);
    s.complete_http_call(token, Response::status(200).body("bob"))?;
    let ex = s.finish(Response::status(204))?;
    assert_eq!(ex.downstream.status, 204);
    assert_eq!(ex.upstream.and_then(|u| u.header("x-auth").map(String::from)), Some("bob".into()));
    Ok(())
}

#[test]
fn root_context_calls_get_their_answer_in_the_root() -> anyhow::Result<()> {
    let host = host()?;
    host.respond_to_calls(|call| {
        (call.cluster == "config").then(|| Response::status(200).body("from-root").into())
    });
    let vm = host.plugin("root_call=config").start()?;
    let call = &vm.outbound_calls()[0];
    assert_eq!(call.context_id, vm.root_context_id());
    let expected =
        format!("root {} got call {} response: status=200 body=from-root", vm.root_context_id(), call.token);
    assert!(vm.logs().iter().any(|l| l.message == expected), "{}", vm.log_text());
    Ok(())
}

#[test]
fn unknown_cluster_is_refused_when_clusters_are_declared() -> anyhow::Result<()> {
    let host = host()?;
    host.clusters(["auth"]);
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(call_to("nope")).run()?;
    assert_eq!(ex.downstream.status, 500);
    assert_eq!(ex.downstream.body_str(), "dispatch failed: BadArgument");
    Ok(())
}

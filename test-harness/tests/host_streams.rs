//! Stream control: local replies, pausing and continuing, resets, and the context lifecycle.

use tollgate_harness::host::{Host, Request, Response};

fn host() -> anyhow::Result<Host> {
    Ok(Host::load(tollgate_harness::probe_wasm())?)
}

#[test]
fn local_reply_ends_the_stream_without_contacting_upstream() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm
        .send(Request::post("/x").header("x-probe-op", "local-reply").body("ignored"))
        .respond_with(Response::status(200).body("must not be seen"))
        .run()?;
    assert!(ex.upstream.is_none());
    assert_eq!(ex.downstream.status, 418);
    assert_eq!(ex.downstream.body_str(), "short and stout");
    assert_eq!(ex.downstream.header("content-type"), Some("text/plain"));
    assert_eq!(ex.local_reply_details.as_deref(), Some("probe_teapot"));
    // Envoy runs local replies through the filter's response callbacks.
    assert_eq!(ex.downstream.header("x-probe-response"), Some("1"));
    assert!(ex.complete);
    assert!(
        !ex.logs.iter().any(|l| l.message.contains("request body size")),
        "request body is not delivered after a local reply"
    );
    Ok(())
}

#[test]
fn local_reply_from_response_headers_replaces_the_upstream_response() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm
        .send(Request::get("/x").header("x-probe-op", "resp-local"))
        .respond_with(Response::status(200).body("upstream body"))
        .run()?;
    assert!(ex.upstream.is_some(), "the request did reach the upstream");
    assert_eq!(ex.downstream.status, 502);
    assert_eq!(ex.downstream.header("x-replaced"), Some("1"));
    assert_eq!(ex.downstream.body_str(), "replaced by filter");
    Ok(())
}

#[test]
fn body_reaches_the_guest_while_its_headers_wait_and_leaves_with_them() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let mut s = vm.stream(Request::post("/p").header("x-probe-op", "http-call").body_chunks(["a", "b"]))?;
    s.send_request()?;
    assert!(s.request_paused());
    assert!(!s.reached_upstream(), "held until the call answers");
    let id = s.context_id();
    // Envoy's StopIteration: the filter still sees the body as it arrives (and buffers it here).
    let logs: Vec<String> = s.exchange().logs.iter().map(|l| l.message.clone()).collect();
    assert!(logs.contains(&format!("stream {id} request body size=1 end=false")), "{logs:#?}");
    assert!(logs.contains(&format!("stream {id} request body size=2 end=true")), "{logs:#?}");
    let token = s.vm().pending_calls()[0];
    s.complete_http_call(token, Response::status(200).body("ok"))?;
    let up = s.exchange().upstream.expect("forwarded after continue");
    assert_eq!(up.body_str(), "ab");
    assert_eq!(up.header("x-auth"), Some("ok"));
    Ok(())
}

#[test]
fn trailers_reach_the_guest_while_its_headers_wait_and_leave_with_them() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let request = Request::post("/p")
        .header("x-probe-op", "http-call")
        .body_chunks(["a", "b"])
        .trailers([("x-sum", "2")]);
    let mut s = vm.stream(request)?;
    s.send_request()?;
    assert!(s.request_paused());
    let id = s.context_id();
    // Envoy's StopIteration: the trailers end the body the filter buffered, and the filter still holds it all.
    let logs: Vec<String> = s.exchange().logs.iter().map(|l| l.message.clone()).collect();
    assert!(logs.contains(&format!("stream {id} request body size=2 end=false")), "{logs:#?}");
    assert!(logs.contains(&format!("stream {id} request trailers 1 after body size=2")), "{logs:#?}");
    assert!(!s.reached_upstream(), "held until the call answers");
    let token = s.vm().pending_calls()[0];
    s.complete_http_call(token, Response::status(200).body("ok"))?;
    let up = s.exchange().upstream.expect("forwarded after continue");
    assert_eq!(up.body_str(), "ab");
    assert_eq!(up.header("x-auth"), Some("ok"));
    assert_eq!(up.trailers, vec![("x-sum".to_string(), "2".to_string())]);
    Ok(())
}

#[test]
fn close_stream_resets_the_downstream() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(Request::get("/").header("x-probe-op", "reset")).run()?;
    assert!(ex.downstream.reset);
    assert_eq!(ex.downstream.status, 0);
    assert!(ex.upstream.is_none());
    assert!(ex.complete);
    Ok(())
}

#[test]
fn completed_streams_are_logged_and_deleted() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(Request::get("/")).run()?;
    assert!(ex.complete);
    assert!(ex.logs.iter().any(|l| l.message == format!("stream {} on_log", ex.context_id)));
    assert_eq!(vm.exchange(ex.context_id), Some(ex));
    Ok(())
}

#[test]
fn a_stream_that_never_continues_is_reported_as_stalled() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let err = vm.send(Request::get("/").header("x-probe-op", "pause")).run().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("holds the request"), "{text}");
    Ok(())
}

#[test]
fn exchange_round_trips_through_json() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm
        .send(Request::post("/j").body("{\"a\":1}"))
        .respond_with(Response::status(200).body("done"))
        .run()?;
    let json = serde_json::to_string(&ex)?;
    let back: tollgate_harness::host::Exchange = serde_json::from_str(&json)?;
    assert_eq!(back, ex);
    let req: Request =
        serde_json::from_str(r#"{"method":"POST","path":"/v1","body":["a","b"],"headers":[["x","y"]]}"#)?;
    assert_eq!(req.body.concat(), b"ab");
    Ok(())
}

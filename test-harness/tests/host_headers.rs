//! Header maps and body buffers: what the guest reads, and what its edits do to the upstream.

use tollgate_harness::host::{Host, Request, Response};

fn host() -> anyhow::Result<Host> {
    Ok(Host::load(tollgate_harness::probe_wasm())?)
}

#[test]
fn header_edits_reach_the_upstream() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let req = Request::get("/h")
        .header("x-probe-op", "headers")
        .header("X-Read", "hello")
        .header("x-replace", "old")
        .header("x-replace", "older")
        .header("x-remove", "gone");
    let ex = vm.send(req).run()?;
    let up = ex.upstream.expect("request reached upstream");
    assert_eq!(up.method, "GET");
    assert_eq!(up.path, "/h");
    assert_eq!(up.header("x-added"), Some("1"));
    assert_eq!(up.header("x-replace"), Some("new"));
    assert_eq!(up.headers.iter().filter(|(k, _)| k == "x-replace").count(), 1, "replace drops duplicates");
    assert_eq!(up.header("x-remove"), None);
    assert_eq!(up.header("x-read-echo"), Some("hello"), "lookup is case-insensitive");
    // 4 pseudo-headers + 5 regular headers were visible to the guest.
    assert_eq!(up.header("x-count"), Some("9"));
    assert_eq!(ex.downstream.header("x-probe-response"), Some("1"));
    Ok(())
}

#[test]
fn buffered_body_accumulates_and_the_guest_sees_all_of_it() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let req = Request::post("/b")
        .header("x-probe-op", "body-buffer")
        .header("content-length", "11")
        .body_chunks(["hello", " ", "world"]);
    let ex = vm.send(req).run()?;
    let sizes: Vec<&str> = ex
        .logs
        .iter()
        .filter(|l| l.message.contains("request body size"))
        .map(|l| l.message.as_str())
        .collect();
    let id = ex.context_id;
    assert_eq!(
        sizes,
        [
            format!("stream {id} request body size=5 end=false"),
            format!("stream {id} request body size=6 end=false"),
            format!("stream {id} request body size=11 end=true"),
        ]
    );
    let up = ex.upstream.expect("reached upstream");
    assert_eq!(up.body_str(), "HELLO WORLD");
    assert_eq!(up.header("content-length"), Some("11"));
    Ok(())
}

#[test]
fn streamed_body_goes_through_chunk_by_chunk() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(Request::post("/s").body_chunks(["ab", "cd"]).trailers([("x-t", "1")])).run()?;
    let id = ex.context_id;
    assert!(ex.logs.iter().any(|l| l.message == format!("stream {id} request body size=2 end=false")));
    let up = ex.upstream.expect("reached upstream");
    assert_eq!(up.body_str(), "abcd");
    assert_eq!(up.trailers, vec![("x-t".to_string(), "1".to_string())]);
    Ok(())
}

#[test]
fn response_body_buffering_and_rewrite_reach_downstream() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let ex = vm
        .send(Request::get("/r").header("x-probe-op", "resp-buffer"))
        .respond_with(Response::status(201).header("content-length", "6").body_chunks(["abc", "def"]))
        .run()?;
    assert_eq!(ex.downstream.status, 201);
    assert_eq!(ex.downstream.body_str(), "ABCDEF");
    assert_eq!(ex.downstream.header("x-probe-response"), Some("1"));
    assert!(ex.complete);
    Ok(())
}

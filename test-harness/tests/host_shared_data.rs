//! Shared data with CAS, shared between worker VMs.

use tollgate_harness::host::{Host, Request};

fn host() -> anyhow::Result<Host> {
    Ok(Host::load(tollgate_harness::probe_wasm())?)
}

fn op(name: &str) -> Request {
    Request::get("/").header("x-probe-op", name).header("x-key", "k")
}

#[test]
fn a_stale_cas_write_is_rejected() -> anyhow::Result<()> {
    let host = host()?;
    host.set_shared_data("k", "seed");
    let mut vm = host.plugin("").start()?;
    let ex = vm.send(op("cas-stale")).run()?;
    assert_eq!(ex.downstream.header("x-first"), Some("ok"));
    assert_eq!(ex.downstream.header("x-second"), Some("cas-mismatch"));
    assert_eq!(host.shared_data("k").map(|(v, _)| v), Some(b"first".to_vec()));
    Ok(())
}

#[test]
fn writes_are_visible_across_workers_and_bump_cas() -> anyhow::Result<()> {
    let host = host()?;
    let mut workers = host.plugin("").workers(2).start_all()?;
    assert_eq!(workers.len(), 2);
    let ex = workers[0].send(op("shared-set").header("x-value", "v1")).run()?;
    assert_eq!(ex.downstream.header("x-result"), Some("ok"));
    let read = workers[1].send(op("shared-get")).run()?;
    assert_eq!(read.downstream.header("x-value"), Some("v1"));
    let cas1: u32 = read.downstream.header("x-cas").unwrap_or_default().parse()?;
    assert_ne!(cas1, 0);

    // Worker 0 writes with the current cas; worker 1's copy of that cas is now stale.
    let ok =
        workers[0].send(op("shared-cas").header("x-value", "v2").header("x-cas", &cas1.to_string())).run()?;
    assert_eq!(ok.downstream.header("x-result"), Some("ok"));
    let stale =
        workers[1].send(op("shared-cas").header("x-value", "v3").header("x-cas", &cas1.to_string())).run()?;
    assert_eq!(stale.downstream.header("x-result"), Some("cas-mismatch"));
    let (value, cas2) = host.shared_data("k").expect("set");
    assert_eq!(value, b"v2");
    assert_ne!(cas1, cas2);

    // cas 0 writes unconditionally.
    let forced = workers[1].send(op("shared-cas").header("x-value", "v4").header("x-cas", "0")).run()?;
    assert_eq!(forced.downstream.header("x-result"), Some("ok"));
    assert_eq!(host.shared_data("k").map(|(v, _)| v), Some(b"v4".to_vec()));
    Ok(())
}

#[test]
fn missing_keys_read_as_empty_and_hosts_are_isolated() -> anyhow::Result<()> {
    let a = host()?;
    let b = host()?;
    a.set_shared_data("k", "only-in-a");
    let mut vm = b.plugin("").start()?;
    let ex = vm.send(op("shared-get")).run()?;
    assert_eq!(ex.downstream.header("x-value"), Some(""));
    assert_eq!(ex.downstream.header("x-cas"), Some("0"));
    Ok(())
}

//! Shared queues: registration, resolution by vm id, and on_queue_ready to the owner VM.

use tollgate_harness::host::{Host, Request};

fn enqueue(vm_id: &str, queue: &str, value: &str) -> Request {
    Request::get("/")
        .header("x-probe-op", "enqueue")
        .header("x-vm-id", vm_id)
        .header("x-queue", queue)
        .header("x-value", value)
}

#[test]
fn enqueue_from_one_worker_wakes_the_registering_worker() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut workers = host.plugin("queue=jobs").vm_id("vm1").workers(2).start_all()?;
    // Both roots registered "jobs"; the latest registration (worker 1) owns it, as in Envoy.
    let ex = workers[0].send(enqueue("vm1", "jobs", "job-1")).run()?;
    assert_eq!(ex.downstream.header("x-result"), Some("ok"));
    assert!(!workers[0].logs().iter().any(|l| l.message.contains("dequeued")));
    workers[1].poll()?;
    let root = workers[1].root_context_id();
    assert!(
        workers[1]
            .logs()
            .iter()
            .any(|l| l.message.starts_with(&format!("root {root} dequeued from 1: job-1"))),
        "{}",
        workers[1].log_text()
    );
    Ok(())
}

#[test]
fn same_vm_enqueue_is_delivered_after_the_callback() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("queue=jobs").start()?;
    vm.send(Request::get("/").header("x-probe-op", "enqueue-own")).run()?;
    assert!(
        vm.logs().iter().any(|l| l.message.ends_with("dequeued from 1: from-stream")),
        "{}",
        vm.log_text()
    );
    Ok(())
}

#[test]
fn resolving_an_unknown_queue_is_not_found() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("queue=jobs").vm_id("vm1").start()?;
    let ex = vm.send(enqueue("other-vm", "jobs", "x")).run()?;
    assert_eq!(ex.downstream.header("x-result"), Some("not-found"));
    Ok(())
}

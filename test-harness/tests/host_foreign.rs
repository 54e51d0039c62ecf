//! proxy_call_foreign_function and proxy_on_foreign_function.

use tollgate_harness::host::{Host, Request};

fn call(name: &str, args: &str) -> Request {
    Request::get("/").header("x-probe-op", "foreign").header("x-name", name).header("x-args", args)
}

#[test]
fn registered_functions_answer_and_unknown_ones_are_not_found() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host
        .plugin("")
        .foreign_function("reverse", |args| Ok(args.iter().rev().copied().collect()))
        .foreign_function("fails", |_| Err(2))
        .start()?;
    assert_eq!(vm.send(call("reverse", "abc")).run()?.downstream.header("x-result"), Some("cba"));
    assert_eq!(vm.send(call("missing", "")).run()?.downstream.header("x-result"), Some("NotFound"));
    assert_eq!(vm.send(call("fails", "")).run()?.downstream.header("x-result"), Some("BadArgument"));
    assert_eq!(vm.send(call("clear_route_cache", "")).run()?.downstream.header("x-result"), Some(""));
    assert_eq!(vm.route_cache_clears(), 1);
    Ok(())
}

#[test]
fn host_triggered_foreign_function_event_reaches_the_root() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").start()?;
    // The probe does not override on_foreign_function; the SDK's default must accept the call.
    vm.on_foreign_function(7, b"payload")?;
    Ok(())
}

//! proxy_log and proxy_get_log_level through the probe guest.

use tollgate_harness::host::{Host, LogLevel, Request};

fn op(name: &str) -> Request {
    Request::get("/").header("x-probe-op", name)
}

#[test]
fn logs_are_captured_at_or_above_the_level() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").log_level(LogLevel::Warn).start()?;
    let ex = vm.send(op("log")).run()?;
    let messages: Vec<_> = ex.logs.iter().map(|l| (l.level, l.message.as_str())).collect();
    assert!(messages.contains(&(LogLevel::Warn, "warn line")), "{messages:?}");
    assert!(messages.contains(&(LogLevel::Error, "error line")));
    assert!(!messages.iter().any(|(_, m)| *m == "info line" || *m == "debug line"));
    assert_eq!(ex.downstream.header("x-log-level"), Some("Warn"));
    Ok(())
}

#[test]
fn trace_level_captures_everything_and_vm_logs_accumulate() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").vm_config("vm-cfg").log_level(LogLevel::Trace).start()?;
    assert!(vm.logs().iter().any(|l| l.message == "vm_start config=vm-cfg"), "{}", vm.log_text());
    let ex = vm.send(op("log")).run()?;
    assert_eq!(ex.downstream.header("x-log-level"), Some("Trace"));
    for line in ["trace line", "debug line", "info line"] {
        assert!(vm.logs().iter().any(|l| l.message == line), "missing {line}");
    }
    vm.clear_logs();
    assert!(vm.logs().is_empty());
    Ok(())
}

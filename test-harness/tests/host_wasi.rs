//! The WASI subset: stdout/stderr become logs, the clock is virtual, randomness and environment.

use std::time::UNIX_EPOCH;

use tollgate_harness::host::{Host, LogLevel, Request};

#[test]
fn stdout_stderr_clock_random_and_env() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").env("PROBE_ENV", "from-host").start()?;
    let now = vm.now().duration_since(UNIX_EPOCH)?.as_nanos().to_string();
    let ex = vm.send(Request::get("/").header("x-probe-op", "wasi")).run()?;
    assert!(
        ex.logs.iter().any(|l| l.level == LogLevel::Info && l.message == "hello from stdout"),
        "{:#?}",
        ex.logs
    );
    assert!(ex.logs.iter().any(|l| l.level == LogLevel::Error && l.message == "hello from stderr"));
    assert_eq!(ex.downstream.header("x-now"), Some(now.as_str()));
    let random = ex.downstream.header("x-random").unwrap_or_default();
    assert_eq!(random.len(), 16);
    assert_ne!(random, "0000000000000000");
    assert_eq!(ex.downstream.header("x-env"), Some("from-host"));
    Ok(())
}

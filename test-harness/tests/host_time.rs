//! The virtual clock: proxy_get_current_time_nanoseconds, ticks in order, and call timeouts.

use std::time::{Duration, UNIX_EPOCH};

use tollgate_harness::host::{Host, LogLevel, Request};

fn host() -> anyhow::Result<Host> {
    Ok(Host::load(tollgate_harness::probe_wasm())?)
}

#[test]
fn guest_reads_the_virtual_clock() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    let start = vm.now().duration_since(UNIX_EPOCH)?.as_nanos();
    let ex = vm.send(Request::get("/").header("x-probe-op", "time")).run()?;
    assert_eq!(ex.downstream.header("x-time"), Some(start.to_string().as_str()));
    vm.advance(Duration::from_secs(5))?;
    let ex = vm.send(Request::get("/").header("x-probe-op", "time")).run()?;
    let later = start + Duration::from_secs(5).as_nanos();
    assert_eq!(ex.downstream.header("x-time"), Some(later.to_string().as_str()));
    Ok(())
}

#[test]
fn ticks_fire_in_order_at_their_own_times() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("tick_ms=100").log_level(LogLevel::Info).start()?;
    let start_ms = vm.now().duration_since(UNIX_EPOCH)?.as_millis();
    vm.advance(Duration::from_millis(350))?;
    let ticks: Vec<&str> =
        vm.logs().iter().filter(|l| l.message.starts_with("tick ")).map(|l| l.message.as_str()).collect();
    let expected: Vec<String> = (1..=3).map(|i| format!("tick {i} at {} ms", start_ms + 100 * i)).collect();
    assert_eq!(ticks, expected);
    assert_eq!(vm.metric("probe_ticks"), Some(3));
    vm.advance(Duration::from_millis(50))?;
    assert_eq!(vm.metric("probe_ticks"), Some(4));
    Ok(())
}

#[test]
fn no_tick_without_a_period() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("").start()?;
    vm.advance(Duration::from_secs(60))?;
    assert_eq!(vm.metric("probe_ticks"), None);
    Ok(())
}

#[test]
fn a_tick_can_resume_a_parked_stream_through_the_effective_context() -> anyhow::Result<()> {
    let host = host()?;
    let mut vm = host.plugin("tick_ms=1000").start()?;
    let mut s = vm.stream(Request::get("/parked").header("x-probe-op", "wait-tick"))?;
    s.send_request()?;
    assert!(s.request_paused());
    assert!(!s.reached_upstream());
    s.advance(Duration::from_millis(1000))?;
    assert!(s.reached_upstream(), "{}", s.vm().log_text());
    let ex = s.finish(Default::default())?;
    assert_eq!(ex.upstream.map(|u| u.path), Some("/parked".to_string()));
    Ok(())
}

#[test]
fn a_worker_left_idle_gets_one_late_tick_not_a_burst() -> anyhow::Result<()> {
    let host = host()?;
    let mut workers = host.plugin("tick_ms=100").workers(2).start_all()?;
    // Worker 0 moves the shared clock 100 periods ahead; worker 1 is not driven meanwhile.
    workers[0].advance(Duration::from_secs(10))?;
    assert_eq!(host.metric("probe_ticks"), Some(100));
    workers[1].poll()?;
    assert_eq!(host.metric("probe_ticks"), Some(101), "Envoy re-arms a late timer once");
    workers[1].advance(Duration::from_millis(100))?;
    assert_eq!(host.metric("probe_ticks"), Some(102));
    Ok(())
}

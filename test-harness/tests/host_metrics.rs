//! Metrics: define, increment, record, get, and reading them back from the test across workers.

use tollgate_harness::host::{Host, MetricKind, Request};

#[test]
fn metrics_are_readable_back_and_shared_by_workers() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut workers = host.plugin("").workers(2).start_all()?;
    let req = || Request::get("/").header("x-probe-op", "metrics");
    let first = workers[0].send(req()).run()?;
    assert_eq!(first.downstream.header("x-counter"), Some("1"));
    assert_eq!(first.downstream.header("x-negative"), Some("Err(BadArgument)"), "counters cannot go down");
    let second = workers[1].send(req()).run()?;
    assert_eq!(second.downstream.header("x-counter"), Some("2"));
    assert_eq!(host.metric("probe_requests"), Some(2));
    assert_eq!(workers[0].metric("probe_gauge"), Some(40));
    assert_eq!(host.histogram("probe_latency"), vec![7, 7]);
    assert_eq!(host.metric("probe_latency"), None, "histograms have samples, not a value");
    assert_eq!(host.metric("undefined"), None);
    let kinds = workers[1].metric_kinds();
    assert!(kinds.contains(&("probe_gauge".to_string(), MetricKind::Gauge)));
    Ok(())
}

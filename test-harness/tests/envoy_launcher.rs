//! The Envoy launcher itself, with the wasm filter left out so these run before any module is built.
//! They need Envoy (`./build.sh test` installs it, or set ENVOY_BIN).

use anyhow::{bail, Result};
use tollgate_harness::envoy::{http_client, Envoy, StartError};
use tollgate_harness::upstream::EchoUpstream;

#[test]
fn starts_on_free_ports_and_routes_to_the_upstream() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder("{}").without_filter().upstream(upstream.addr()).start()?;

    let mut response = http_client().get(format!("{}/through/envoy", envoy.base_url())).call()?;
    assert_eq!(response.status().as_u16(), 200);
    let echo: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
    assert_eq!(echo["path"], "/through/envoy");
    assert_eq!(upstream.received().len(), 1);

    assert_ne!(envoy.listener_addr().port(), 0);
    assert!(envoy.admin_url().starts_with("http://127.0.0.1:"));
    assert_eq!(envoy.admin_get("/ready")?.trim(), "LIVE");
    assert_eq!(envoy.counter("http.ingress_http.downstream_rq_total")?, Some(1));
    assert!(envoy.log().contains("starting main dispatch loop"), "{}", envoy.log());
    assert!(envoy.dir().join("envoy.yaml").is_file());
    Ok(())
}

#[test]
fn without_an_upstream_requests_get_a_503() -> Result<()> {
    let envoy = Envoy::builder("{}").without_filter().start()?;
    let response = http_client().get(format!("{}/", envoy.base_url())).call()?;
    assert_eq!(response.status().as_u16(), 503);
    Ok(())
}

#[test]
fn envoy_exiting_at_startup_is_reported_with_its_log() -> Result<()> {
    match Envoy::builder("{}").without_filter().arg("--no-such-flag").start() {
        Ok(envoy) => bail!("Envoy started: {envoy:?}"),
        Err(err @ StartError::Exited { .. }) => {
            let log = err.log().unwrap_or_default();
            assert!(log.contains("no-such-flag"), "{log}");
            assert!(err.to_string().contains("no-such-flag"), "{err}");
            Ok(())
        }
        Err(other) => Err(other.into()),
    }
}

#[test]
fn a_missing_module_is_reported_before_starting_envoy() {
    let err = Envoy::builder("{}").wasm("/nonexistent/tollgate.wasm").start().unwrap_err();
    assert!(matches!(err, StartError::WasmNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("run ./build.sh test"), "{err}");
}

#[test]
fn envoys_started_in_parallel_each_get_their_own_ports() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let addr = upstream.addr();
    let starters: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || Envoy::builder("{}").without_filter().upstream(addr).start()))
        .collect();
    let mut envoys = Vec::new();
    for starter in starters {
        envoys.push(starter.join().map_err(|_| anyhow::anyhow!("a starter thread panicked"))??);
    }
    let mut ports: Vec<u16> = envoys.iter().map(|e| e.listener_addr().port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "{envoys:?}");
    for envoy in &envoys {
        assert_eq!(http_client().get(format!("{}/", envoy.base_url())).call()?.status().as_u16(), 200);
    }
    assert_eq!(upstream.received().len(), 3);

    // Envoys started on threads that have since ended are still running (Envoy dies with its parent thread).
    assert!(envoys.iter().all(|envoy| envoy.is_running()));

    // Dropping an Envoy kills and reaps it.
    let pid = envoys[0].pid();
    drop(envoys);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "Envoy {pid} outlived its handle");
    Ok(())
}

#[test]
fn route_by_header_sends_each_request_to_the_cluster_it_names() -> Result<()> {
    let alpha = EchoUpstream::start()?;
    let beta = EchoUpstream::start()?;
    let envoy = Envoy::builder("{}")
        .without_filter()
        .route_by_header("x-tollgate-cluster")
        .cluster("alpha", alpha.addr())
        .cluster("beta", beta.addr())
        .start()?;
    for (cluster, upstream) in [("beta", &beta), ("alpha", &alpha)] {
        let response = http_client()
            .get(format!("{}/to/{cluster}", envoy.base_url()))
            .header("x-tollgate-cluster", cluster)
            .call()?;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(upstream.received().last().map(|r| r.path.clone()), Some(format!("/to/{cluster}")));
    }
    assert_eq!((alpha.received().len(), beta.received().len()), (1, 1));
    // No header, or an unknown cluster: the router refuses and nothing reaches an upstream.
    let missing = http_client().get(format!("{}/nowhere", envoy.base_url())).call()?;
    let unknown = http_client()
        .get(format!("{}/nowhere", envoy.base_url()))
        .header("x-tollgate-cluster", "gamma")
        .call()?;
    assert!(missing.status().is_client_error() || missing.status().is_server_error(), "{missing:?}");
    assert!(unknown.status().is_client_error() || unknown.status().is_server_error(), "{unknown:?}");
    assert_eq!((alpha.received().len(), beta.received().len()), (1, 1));
    Ok(())
}

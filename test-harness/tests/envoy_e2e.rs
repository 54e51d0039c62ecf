//! End to end: the real `dist/tollgate.wasm` inside a real Envoy (`--concurrency 2`), in front of the echo
//! upstream. Needs Envoy and the built module; without them each test fails saying to run `./build.sh test`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tollgate_harness::envoy::{http_client, Envoy, StartError, LISTENER_NAME};
use tollgate_harness::upstream::{EchoUpstream, Reply};

fn start(config: &Value, upstream: &EchoUpstream) -> Result<Envoy> {
    Ok(Envoy::builder(config.to_string()).upstream(upstream.addr()).start()?)
}

fn body_json(response: &mut ureq::http::Response<ureq::Body>) -> Result<Value> {
    Ok(serde_json::from_str(&response.body_mut().read_to_string()?)?)
}

fn header<'a>(response: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|value| value.to_str().ok())
}

#[test]
fn forwards_the_edited_request_and_edits_the_response() -> Result<()> {
    // Echoes like the default upstream, plus two response headers for the filter to keep or strip.
    let upstream = EchoUpstream::start_with(|request| Reply::Fixed {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-upstream-secret".into(), "s3cret".into()),
            ("x-upstream-kept".into(), "kept".into()),
        ],
        body: request.to_json().to_string().into_bytes(),
    })?;
    let envoy = start(
        &json!({
            "upstream_headers": {"set": {"x-tollgate": "on"}, "remove": ["x-internal"]},
            "response_headers": {"set": {"x-served-by": "tollgate"}, "remove": ["x-upstream-secret"]}
        }),
        &upstream,
    )?;

    let mut response = http_client()
        .post(format!("{}/v1/things?x=1", envoy.base_url()))
        .header("x-internal", "secret")
        .header("x-keep", "yes")
        .send("hello")?;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "x-served-by"), Some("tollgate"));
    assert_eq!(header(&response, "x-upstream-secret"), None);
    assert_eq!(header(&response, "x-upstream-kept"), Some("kept"));
    let echo = body_json(&mut response)?;
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/things?x=1");
    assert_eq!(echo["body"], "hello");
    assert_eq!(echo["headers"]["x-tollgate"], "on");
    assert_eq!(echo["headers"]["x-keep"], "yes");
    assert_eq!(echo["headers"].get("x-internal"), None);

    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("x-tollgate"), Some("on"));
    assert_eq!(received[0].header("x-internal"), None);
    assert_eq!(received[0].body, b"hello");
    Ok(())
}

#[test]
fn answers_locally_without_calling_the_upstream() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let envoy = start(
        &json!({"local_replies": [
            {"path_prefix": "/tollgate/ping", "method": "GET", "status": 200, "headers": {"x-a": "b"}, "body": {"pong": true}},
            {"path_prefix": "/blocked", "status": 403, "body": "not here"}
        ]}),
        &upstream,
    )?;
    let client = http_client();

    let mut ping = client.get(format!("{}/tollgate/ping?verbose=1", envoy.base_url())).call()?;
    assert_eq!(ping.status().as_u16(), 200);
    assert_eq!(header(&ping, "x-a"), Some("b"));
    assert_eq!(header(&ping, "content-type"), Some("application/json"));
    assert_eq!(body_json(&mut ping)?, json!({"pong": true}));

    let mut blocked = client.get(format!("{}/blocked/deeper", envoy.base_url())).call()?;
    assert_eq!(blocked.status().as_u16(), 403);
    assert_eq!(header(&blocked, "content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(blocked.body_mut().read_to_string()?, "not here");
    assert!(upstream.received().is_empty(), "upstream saw {:?}", upstream.received());

    // The method is part of the match: a POST to the ping path goes upstream.
    let mut posted = client.post(format!("{}/tollgate/ping", envoy.base_url())).send("")?;
    assert_eq!(posted.status().as_u16(), 200);
    assert_eq!(body_json(&mut posted)?["method"], "POST");
    assert_eq!(upstream.received().len(), 1);
    Ok(())
}

#[test]
fn a_rejected_config_stops_envoy_with_the_json_path_in_the_log() -> Result<()> {
    let cases = [
        (
            json!({"local_replies": [{"path_prefix": "/x", "status": 99}]}).to_string(),
            "local_replies[0].status: 99 is not",
        ),
        (
            json!({"upstream_headers": {"sett": {}}}).to_string(),
            "upstream_headers.sett: unknown field `sett`",
        ),
        ("{".to_owned(), "(root): EOF while parsing"),
    ];
    for (config, expected) in cases {
        let log = match Envoy::builder(config.as_str()).start() {
            Ok(envoy) => bail!("Envoy started with config {config}; log:\n{}", envoy.log()),
            // Envoy 1.40 refuses a static wasm filter whose on_configure fails: it exits with status 1.
            Err(StartError::Exited { log, status }) => {
                assert_eq!(status.code(), Some(1), "config {config}:\n{log}");
                log
            }
            Err(other) => return Err(other.into()),
        };
        let line = format!("configuration rejected: {expected}");
        assert!(log.contains(&line), "no {line:?} in the log of config {config}:\n{log}");
        assert!(log.contains("Unable to create Wasm plugin tollgate"), "config {config}:\n{log}");
    }
    Ok(())
}

#[test]
fn counts_requests_and_local_replies_in_envoy_stats() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let envoy =
        start(&json!({"local_replies": [{"path_prefix": "/tollgate/ping", "status": 200}]}), &upstream)?;
    let client = http_client();
    for path in ["/a", "/b", "/c", "/tollgate/ping", "/tollgate/ping"] {
        assert_eq!(client.get(format!("{}{path}", envoy.base_url())).call()?.status().as_u16(), 200);
    }

    // Envoy names metrics a wasm module defines `wasmcustom.<name>`.
    let wait = Duration::from_secs(5);
    assert_eq!(envoy.wait_for_counter("wasmcustom.tollgate_requests_total", 5, wait)?, 5);
    assert_eq!(envoy.wait_for_counter("wasmcustom.tollgate_local_replies_total", 2, wait)?, 2);
    let stats = envoy.stats()?;
    assert_eq!(stats.wasm_custom("tollgate_requests_total"), Some(5));
    assert_eq!(stats.get("http.ingress_http.downstream_rq_total"), Some(5));
    // Prometheus output drops the prefix again.
    let prometheus = envoy.admin_get("/stats/prometheus")?;
    assert!(
        prometheus.lines().any(|line| line.starts_with("tollgate_requests_total") && line.ends_with(" 5")),
        "{prometheus}"
    );
    Ok(())
}

#[test]
fn concurrent_requests_across_both_workers_all_succeed() -> Result<()> {
    const CLIENTS: usize = 8;
    const REQUESTS_EACH: usize = 4;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let (in_flight, most_in_flight) = (Arc::clone(&in_flight), Arc::clone(&most_in_flight));
        EchoUpstream::start_with(move |_| {
            // Held open briefly so requests overlap and the filter runs for several streams at once.
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most_in_flight.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Reply::Echo
        })?
    };
    let envoy = start(&json!({"upstream_headers": {"set": {"x-tollgate": "on"}}}), &upstream)?;
    let base = envoy.base_url();
    let start_together = Arc::new(Barrier::new(CLIENTS));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, start_together) = (base.clone(), Arc::clone(&start_together));
            std::thread::spawn(move || -> Result<()> {
                start_together.wait();
                for n in 0..REQUESTS_EACH {
                    // A fresh agent means a fresh connection, which the kernel spreads across the workers.
                    let mut response = http_client().get(format!("{base}/c{client}/r{n}")).call()?;
                    assert_eq!(response.status().as_u16(), 200);
                    let echo = body_json(&mut response)?;
                    assert_eq!(echo["path"], format!("/c{client}/r{n}"));
                    assert_eq!(echo["headers"]["x-tollgate"], "on");
                }
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }

    let total = CLIENTS * REQUESTS_EACH;
    assert_eq!(upstream.received().len(), total);
    assert!(most_in_flight.load(Ordering::SeqCst) >= 2, "requests never overlapped");
    let stats = envoy.stats()?;
    let per_worker: Vec<u64> = (0..2)
        .map(|worker| {
            stats.get(&format!("listener.{LISTENER_NAME}.worker_{worker}.downstream_cx_total")).unwrap_or(0)
        })
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), total as u64, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|&connections| connections > 0),
        "one worker took every connection: {per_worker:?}"
    );
    assert_eq!(stats.wasm_custom("tollgate_requests_total"), Some(total as u64));
    Ok(())
}

#[test]
fn the_shipped_example_config_does_what_the_demo_says() -> Result<()> {
    let example = std::fs::read_to_string(tollgate_harness::repo_root().join("envoy/tollgate.example.json"))?;
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder(example).upstream(upstream.addr()).start()?;
    let client = http_client();

    let mut hello =
        client.get(format!("{}/hello", envoy.base_url())).header("x-internal", "secret").call()?;
    assert_eq!(header(&hello, "x-served-by"), Some("tollgate"));
    let echo = body_json(&mut hello)?;
    assert_eq!(echo["headers"]["x-tollgate"], "on");
    assert_eq!(echo["headers"].get("x-internal"), None);

    let mut ping = client.get(format!("{}/tollgate/ping", envoy.base_url())).call()?;
    assert_eq!(ping.status().as_u16(), 200);
    assert_eq!(body_json(&mut ping)?, json!({"pong": true}));
    assert_eq!(upstream.received().len(), 1);
    Ok(())
}

/// Every Envoy the suite starts audits itself for leaked secrets when it drops (the launcher's secrets audit).
/// This shows the audit sees a real leak in a real Envoy and stays quiet when there is none: a client key is
/// stripped before the request goes upstream, the same secret in a header nobody strips is not.
#[test]
fn the_secrets_audit_finds_a_credential_sent_upstream_and_nothing_in_a_clean_run() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let alice = tollgate_auth::GeneratedKey::from_random(&[9; 32], &[9, 0, 0, 1]);
    let config = json!({"auth": {"consumers": [{"name": "alice", "api_keys": [alice.config_entry()]}]}});
    let envoy =
        Envoy::builder(config.to_string()).upstream(upstream.addr()).without_secrets_audit().start()?;
    let answer = envoy.get("/x", &[("x-api-key", &alice.key)])?;
    assert_eq!(answer.status, 200, "{answer:?}");
    let log = envoy.log();
    assert!(log.contains("router decoding headers"), "the router's upstream dump is on: {log}");
    assert!(log.contains("][wasm]"), "the filter's logs are on: {log}");
    assert_eq!(envoy.secret_leaks(), Vec::<String>::new());
    // The key again, in a header nobody strips: it goes upstream, and the audit says where.
    envoy.get("/x", &[("x-api-key", &alice.key), ("x-copy-of-my-key", &alice.key)])?;
    let leaks = envoy.secret_leaks();
    assert_eq!(leaks.len(), 1, "{leaks:#?}");
    assert!(leaks[0].starts_with("Client secret tg_"), "{leaks:#?}");
    assert!(leaks[0].contains("in Envoy's log [router]"), "{leaks:#?}");
    assert!(!leaks[0].contains(&alice.key), "the report redacts it: {leaks:#?}");
    Ok(())
}

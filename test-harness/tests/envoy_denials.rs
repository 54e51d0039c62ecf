//! End to end: every refusal pinpoints itself. In a real Envoy, each kind of denial the configuration can
//! produce gets its documented status, an OpenAI-shaped body whose `error.code` is the reason, and the same
//! code in `x-tollgate-reason`; the access log line carries the reason (`%RESP(X-TOLLGATE-REASON)%`) and the
//! decision trace (filter state `wasm.tollgate_trace`); the trace header goes to the trusted group only.
//! Needs Envoy and the built module: `./build.sh test` provides both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;
use tollgate_auth::keygen;
use tollgate_harness::envoy::{Answer, Envoy};
use tollgate_harness::upstream::EchoUpstream;
use tollgate_pipeline::reasons;

/// Waits for the access log to hold a line containing `needle` (Envoy flushes it every 200 ms).
fn access_log_line(envoy: &Envoy, needle: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(line) = envoy.access_log().lines().find(|l| l.contains(needle)) {
            return Ok(line.to_owned());
        }
        if Instant::now() > deadline {
            bail!("no access log line with {needle:?}:\n{}", envoy.access_log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_refused(answer: &Answer, status: u16, code: &str) -> Result<()> {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.openai_error()?.1, code, "{answer:?}");
    assert_eq!(answer.header("x-tollgate-reason"), Some(code), "{answer:?}");
    let documented = reasons::all().into_iter().find(|r| r.code == code);
    assert_eq!(documented.map(|r| r.status), Some(status), "{code} is documented with this status");
    Ok(())
}

#[test]
fn each_refusal_names_its_reason_to_the_client_and_in_the_access_log() -> Result<()> {
    let (alice, bob) = (keygen()?, keygen()?);
    let upstream = EchoUpstream::start()?;
    let config = json!({
        "auth": {
            "consumers": [
                {"name": "alice", "group": "ops", "api_keys": [{"id": alice.id, "sha256": alice.sha256,
                                                                 "routes": ["/api"]}]},
                {"name": "bob", "group": "readers", "api_keys": [{"id": bob.id, "sha256": bob.sha256}]}
            ],
            "routes": [
                {"path_prefix": "/internal", "ip": {"allow": ["10.0.0.0/8"]}},
                {"path_prefix": "/api", "consumer_methods": [{"groups": ["readers"], "methods": ["GET"]}]}
            ]
        },
        "ratelimit": {"rules": [{"name": "per-consumer", "key": ["consumer"], "requests": 2, "per": "hour"}]},
        "trace": {"enabled": true, "header_for_groups": ["ops"]}
    });
    let envoy = Envoy::builder(config.to_string()).upstream(upstream.addr()).start()?;
    let bearer = |key: &str| format!("Bearer {key}");

    let missing = envoy.get("/api/missing", &[])?;
    assert_refused(&missing, 401, "missing_credentials")?;
    assert_eq!(missing.header("x-tollgate-trace"), None, "an unknown caller never gets the trace");
    let line = access_log_line(&envoy, "/api/missing")?;
    assert!(line.contains(" 401 reason=missing_credentials "), "{line}");
    assert!(line.ends_with("trace=auth:deny missing_credentials"), "{line}");

    let invalid = envoy.get("/api/invalid", &[("authorization", &bearer("tg_not_a_key"))])?;
    assert_refused(&invalid, 401, "invalid_api_key")?;

    // Alice's key is scoped to /api: elsewhere it is refused, and she is trusted with the trace.
    let scoped = envoy.get("/admin", &[("authorization", &bearer(&alice.key))])?;
    assert_refused(&scoped, 403, "key_scope_route")?;

    // Two requests an hour: the third is refused by the limit.
    for _ in 0..2 {
        let ok = envoy.get("/api/orders", &[("authorization", &bearer(&alice.key))])?;
        assert_eq!(ok.status, 200, "{ok:?}");
        assert_eq!(ok.header("x-tollgate-trace"), Some("auth:allow consumer=alice; ratelimit:allow"));
    }
    let limited = envoy.get("/api/limited", &[("authorization", &bearer(&alice.key))])?;
    assert_refused(&limited, 429, "rate_limited")?;
    let trace = "auth:allow consumer=alice; ratelimit:deny rate_limited";
    assert_eq!(limited.header("x-tollgate-trace"), Some(trace));
    let line = access_log_line(&envoy, "/api/limited")?;
    assert!(
        line.contains(" 429 reason=rate_limited ") && line.ends_with(&format!("trace={trace}")),
        "{line}"
    );

    // Bob is not trusted: no trace header, admitted or refused; the log still has his trace.
    let admitted = envoy.get("/api/bob", &[("authorization", &bearer(&bob.key))])?;
    assert_eq!((admitted.status, admitted.header("x-tollgate-trace")), (200, None), "{admitted:?}");
    let line = access_log_line(&envoy, "/api/bob")?;
    assert!(line.ends_with("trace=auth:allow consumer=bob; ratelimit:allow"), "{line}");
    assert!(
        upstream.received().iter().all(|r| r.header("x-tollgate-trace").is_none()),
        "never sent upstream"
    );

    // The client (127.0.0.1) is outside the route's allowed network: refused before credentials are read.
    let outside = envoy.get("/internal/metrics", &[("authorization", &bearer(&alice.key))])?;
    assert_refused(&outside, 403, "ip_denied")?;
    assert!(!outside.body.contains("10.0.0.0"), "the reply does not reveal the rules: {}", outside.body);
    // Bob's group may only read /api.
    let write = envoy.post_json("/api/orders", &[("authorization", &bearer(&bob.key))], "{}")?;
    assert_refused(&write, 403, "method_not_allowed_for_consumer")?;
    assert_eq!(write.header("x-tollgate-trace"), None);

    let stat = |name: &str| envoy.counter(&format!("wasmcustom.tollgate_denied.reason.{name}")).unwrap();
    assert_eq!(stat("missing_credentials.route._api.consumer.anonymous"), Some(1));
    assert_eq!(stat("rate_limited.route._api.consumer.alice"), Some(1));
    assert_eq!(stat("ip_denied.route._internal.consumer.anonymous"), Some(1));
    Ok(())
}

#[test]
fn behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let config = json!({
        "auth": {
            "client_address": {"from": "x_forwarded_for", "trusted_hops": 1},
            "routes": [{"path_prefix": "/", "require": "none", "ip": {"allow": ["10.0.0.0/8"], "deny": ["10.6.0.0/16"]}}]
        },
        "trace": {"enabled": true}
    });
    let envoy = Envoy::builder(config.to_string()).upstream(upstream.addr()).start()?;
    let from = |xff: &str| envoy.get("/inventory", &[("x-forwarded-for", xff)]).unwrap();
    // The entry the trusted proxy appended (the rightmost) decides.
    assert_eq!(from("10.1.2.3").status, 200);
    assert_eq!(from("203.0.113.9, 10.1.2.3").status, 200, "entries left of it are the client's to invent");
    // A client that prepends an allowed address gets nowhere: the proxy's entry is its real one.
    assert_refused(&from("10.1.2.3, 203.0.113.9"), 403, "ip_denied")?;
    assert_refused(&from("10.6.0.1"), 403, "ip_denied")?;
    // Without the header the address is unknown, and IP rules fail closed.
    assert_refused(&envoy.get("/inventory", &[])?, 403, "ip_denied")?;
    let line = access_log_line(&envoy, "trace=auth:deny ip_denied")?;
    assert!(line.contains(" 403 reason=ip_denied "), "{line}");
    assert_eq!(upstream.received().len(), 2);
    Ok(())
}

//! End to end: global rate limits in real Envoys (`--concurrency 2`) asking one rate limit service
//! (`tollgate-rls`, counters in a real `redis-server`) over gRPC. Two Envoys sharing the service hold one
//! limit between them; an AI request's token rule is asked once its body is in and the rest of its usage is
//! reported after the response; with Redis or the service gone, a fail-open rule admits and a fail-closed
//! rule answers 503. Needs Envoy, the built module and `redis-server`: `./build.sh test` provides them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use tollgate_harness::envoy::{Answer, Envoy};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::rls::{RateLimitService, Redis};
use tollgate_harness::upstream::EchoUpstream;

const WAIT: Duration = Duration::from_secs(5);
const RLS_CLUSTER: &str = "ratelimit";
const CLUSTER_HEADER: &str = "x-tollgate-cluster";
/// Usage reports the rate limit service answered.
const REPORTS_TAKEN: &str = "wasmcustom.tollgate_ratelimit_usage_reports_total";

fn rls_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tollgate-rls"))
}

fn stat(rule: &str, event: &str) -> String {
    format!("wasmcustom.tollgate_ratelimit.rule.{rule}.{event}")
}

fn counter(envoy: &Envoy, rule: &str, event: &str) -> u64 {
    envoy.counter(&stat(rule, event)).unwrap().unwrap_or(0)
}

fn service_section(timeout_ms: u64) -> Value {
    json!({"cluster": RLS_CLUSTER, "domain": "tollgate", "timeout_ms": timeout_ms})
}

#[test]
fn two_envoys_sharing_one_service_hold_one_limit() -> Result<()> {
    const LIMIT: usize = 6;
    let redis = Redis::start()?;
    let limits = json!({"limits": [{"domain": "tollgate", "rule": "fleet", "max": LIMIT, "seconds": 3600, "by": ["x-team"]}]});
    let rls = RateLimitService::start(rls_binary(), &redis.url(), &limits)?;
    let upstream = EchoUpstream::start()?;
    // Fail-closed: a request the service did not admit can never pass by accident.
    let config = json!({"ratelimit": {
        "headers": true,
        "service": service_section(2_000),
        "rules": [{"name": "fleet", "mode": "global", "key": [{"header": "x-team"}], "failure_mode": "closed"}]
    }});
    let start = || {
        Envoy::builder(config.to_string())
            .upstream(upstream.addr())
            .grpc_cluster(RLS_CLUSTER, rls.addr())
            .start()
    };
    let envoys = [start()?, start()?];

    // 24 requests from 8 concurrent clients, alternating between the two Envoys.
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|client| {
                let envoys = &envoys;
                scope.spawn(move || {
                    (0..3)
                        .map(|i| envoys[(client + i) % 2].get("/api/orders", &[("x-team", "red")]).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let admitted = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(admitted, LIMIT, "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    for refused in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(refused.status, 429, "{refused:?}");
        assert_eq!(refused.openai_error()?, ("rate_limit_error".into(), "rate_limited".into()));
        assert!((1..=3600).contains(&refused.retry_after()?), "{refused:?}");
        assert!(refused.body.contains("fleet"), "the message names the rule: {}", refused.body);
        let policy = refused.header("ratelimit-policy").unwrap_or_default();
        assert_eq!(policy, format!("\"fleet\";q={LIMIT};w=3600"), "{refused:?}");
    }
    assert_eq!(upstream.received().len(), LIMIT, "the upstream saw exactly the admitted requests");
    let allowed: u64 = envoys.iter().map(|e| counter(e, "fleet", "allowed")).sum();
    let limited: u64 = envoys.iter().map(|e| counter(e, "fleet", "limited")).sum();
    assert_eq!((allowed, limited), (LIMIT as u64, (24 - LIMIT) as u64));
    assert!(envoys.iter().all(|e| counter(e, "fleet", "failed_closed") == 0));
    // Another team has its own counter, on either Envoy.
    assert_eq!(envoys[1].get("/api/orders", &[("x-team", "blue")])?.status, 200);
    Ok(())
}

fn chat(max_tokens: u64) -> String {
    json!({"model": "gpt-4o", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Say hello to the fleet."}]})
        .to_string()
}

#[test]
fn a_global_token_rule_counts_prompt_first_and_the_rest_after_the_response() -> Result<()> {
    let redis = Redis::start()?;
    let body = chat(50);
    let estimate = body.chars().count().div_ceil(4) as u64;
    // Room for one request's prompt and usage, not for a second request's prompt on top.
    let limit = 3 * estimate;
    let limits = json!({"limits": [{"domain": "tollgate", "rule": "fleet-tokens", "max": limit, "seconds": 3600, "by": ["model"]}]});
    let rls = RateLimitService::start(rls_binary(), &redis.url(), &limits)?;
    let mock = MockLlm::new(ProviderKind::OpenAi, "openai-key").start()?;
    let config = json!({
        "ai": {
            "providers": [{"name": "openai", "kind": "openai", "cluster": "mock_openai",
                           "base_url": "https://api.openai.com/v1", "api_key": "openai-key"}],
            "models": [{"name": "gpt-4o", "provider": "openai"}],
            "cluster_header": CLUSTER_HEADER
        },
        "ratelimit": {
            "service": service_section(2_000),
            "rules": [{"name": "fleet-tokens", "mode": "global", "counts": "tokens", "key": ["model"],
                       "failure_mode": "closed"}]
        }
    });
    let envoy = Envoy::builder(config.to_string())
        .route_by_header(CLUSTER_HEADER)
        .cluster("mock_openai", mock.addr())
        .grpc_cluster(RLS_CLUSTER, rls.addr())
        .start()?;

    // The body waited for the service's answer inside Envoy, then went on translated, key added.
    let first = envoy.post_json("/v1/chat/completions", &[], &body)?;
    assert_eq!(first.status, 200, "{first:?}");
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("authorization"), Some("Bearer openai-key"));
    let forwarded: Value = serde_json::from_slice(&received[0].body)?;
    assert_eq!(forwarded["model"], "gpt-4o");
    let usage = &first.json()?["usage"];
    let used = usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();

    // The rest of the usage leaves from the root context on its next tick.
    // Waits until the service has taken every report so far, so the next question sees them counted.
    let mut reports = 0;
    let mut reported = |used: u64| -> Result<()> {
        if used > estimate {
            reports += 1;
            envoy.wait_for_counter(REPORTS_TAKEN, reports, WAIT)?;
        }
        Ok(())
    };
    reported(used)?;
    assert_eq!(counter(&envoy, "fleet-tokens", "tokens_reported"), used.saturating_sub(estimate));
    let charged = estimate.max(used);
    // Prompts keep being admitted while they fit, then the service refuses before the provider is asked.
    let mut total = charged;
    let mut forwarded_count = 1;
    loop {
        let next = envoy.post_json("/v1/chat/completions", &[], &body)?;
        if total + estimate > limit {
            assert_eq!(next.status, 429, "{next:?} (charged {total} of {limit})");
            assert_eq!(next.openai_error()?, ("rate_limit_error".into(), "token_limit".into()));
            break;
        }
        assert_eq!(next.status, 200, "{next:?} (charged {total} of {limit})");
        forwarded_count += 1;
        let usage = &next.json()?["usage"];
        let used = usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
        reported(used)?;
        total += estimate.max(used);
    }
    assert_eq!(mock.received().len(), forwarded_count, "the refused request never reached the provider");
    Ok(())
}

#[test]
fn without_the_service_open_rules_admit_and_closed_rules_refuse() -> Result<()> {
    let mut redis = Redis::start()?;
    let limits = json!({"limits": [
        {"domain": "tollgate", "rule": "lenient", "max": 1000, "seconds": 60, "by": []},
        {"domain": "tollgate", "rule": "strict", "max": 1000, "seconds": 60, "by": []}
    ]});
    let mut rls = RateLimitService::start(rls_binary(), &redis.url(), &limits)?;
    let upstream = EchoUpstream::start()?;
    let config = json!({"ratelimit": {
        "service": service_section(300),
        "rules": [
            {"name": "lenient", "mode": "global", "routes": ["/open"], "failure_mode": "open"},
            {"name": "strict", "mode": "global", "routes": ["/closed"], "failure_mode": "closed"}
        ]
    }});
    let envoy = Envoy::builder(config.to_string())
        .upstream(upstream.addr())
        .grpc_cluster(RLS_CLUSTER, rls.addr())
        .start()?;
    let status = |path: &str| envoy.get(path, &[]).unwrap();
    assert_eq!((status("/open").status, status("/closed").status), (200, 200), "the service answers");

    let check_down = |why: &str, round: u64| -> Result<()> {
        let open = status("/open");
        assert_eq!(open.status, 200, "{why}: {open:?}");
        let closed = status("/closed");
        assert_eq!(closed.status, 503, "{why}: {closed:?}");
        assert_eq!(closed.openai_error()?, ("server_error".into(), "rate_limit_service_unavailable".into()));
        assert_eq!(closed.retry_after()?, 1);
        assert!(closed.body.contains("strict"), "{}", closed.body);
        assert_eq!(counter(&envoy, "lenient", "failed_open"), round, "{why}");
        assert_eq!(counter(&envoy, "strict", "failed_closed"), round, "{why}");
        Ok(())
    };
    // Redis gone: the service answers UNAVAILABLE.
    redis.stop();
    check_down("redis stopped", 1)?;
    // The service gone: Envoy cannot connect.
    rls.stop();
    check_down("service stopped", 2)?;
    let paths: Vec<String> = upstream.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/open", "/closed", "/open", "/open"], "closed refusals never reached the upstream");
    Ok(())
}

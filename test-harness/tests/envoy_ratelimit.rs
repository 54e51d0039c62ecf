//! End to end: rate limits in the real `dist/tollgate.wasm` inside a real Envoy (`--concurrency 2`, one VM per
//! worker, one shared-data store). A request limit admits exactly N of 192 requests fired by 64 concurrent
//! clients on fresh connections spread over both workers; a token budget refuses a request before it reaches
//! the provider and refunds what a settled request did not use; a shadow rule counts without refusing; a
//! global rule with no rate limit service to ask stops Envoy. Responses are checked as clients receive them, the
//! upstream's record as it received them, and the rules' `wasmcustom.tollgate_ratelimit.rule.*` counters.
//! Needs Envoy and the built module: `./build.sh test` provides both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use tollgate_auth::GeneratedKey;
use tollgate_harness::envoy::{Answer, Envoy, StartError, LISTENER_NAME};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::EchoUpstream;

const WAIT: Duration = Duration::from_secs(5);
const CLUSTER_HEADER: &str = "x-tollgate-cluster";

fn send(envoy: &Envoy, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<Answer> {
    match body {
        None => envoy.get(path, headers),
        Some(body) => envoy.post_json(path, headers, body),
    }
}

fn get(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
    envoy.get(path, headers)
}

fn rule_stat(rule: &str, event: &str) -> String {
    format!("wasmcustom.tollgate_ratelimit.rule.{rule}.{event}")
}

fn rule_counter(envoy: &Envoy, rule: &str, event: &str, expected: u64) -> Result<u64> {
    envoy.wait_for_counter(&rule_stat(rule, event), expected, WAIT)
}

/// Connections each worker's listener accepted, from `listener.<listener>.worker_<n>.downstream_cx_total`.
fn connections_per_worker(envoy: &Envoy) -> Result<Vec<u64>> {
    let prefix = format!("listener.{LISTENER_NAME}.worker_");
    let mut workers: Vec<(String, u64)> = envoy
        .stats()?
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix) && name.ends_with(".downstream_cx_total"))
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    workers.sort();
    Ok(workers.into_iter().map(|(_, value)| value).collect())
}

/// `"rule";key=value;...` items of a Structured Field list, as `(rule, {key: value})`.
fn sf_items(field: &str) -> Vec<(String, Vec<(String, u64)>)> {
    field
        .split(',')
        .map(|item| {
            let mut parts = item.trim().split(';');
            let name = parts.next().unwrap_or_default().trim_matches('"').to_owned();
            let params = parts
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("parameter {p:?} in {field:?}"));
                    (k.to_owned(), v.parse().unwrap_or_else(|_| panic!("parameter {p:?} in {field:?}")))
                })
                .collect();
            (name, params)
        })
        .collect()
}

fn param(items: &[(String, Vec<(String, u64)>)], rule: &str, key: &str) -> Option<u64> {
    let (_, params) = items.iter().find(|(name, _)| name == rule)?;
    params.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

const LIMIT: u64 = 100;
const CLIENTS: usize = 64;
const REQUESTS_PER_CLIENT: usize = 3;

#[test]
fn a_request_limit_admits_exactly_n_of_64_concurrent_clients_across_both_workers() -> Result<()> {
    let alice = GeneratedKey::from_random(&[1; 32], &[1; 4]);
    let bob = GeneratedKey::from_random(&[2; 32], &[2; 4]);
    let config = json!({
        "auth": {"consumers": [
            {"name": "alice", "api_keys": [alice.config_entry()]},
            {"name": "bob", "api_keys": [bob.config_entry()]}
        ]},
        "ratelimit": {
            "headers": true,
            "rules": [{"name": "per-consumer", "key": ["consumer"], "requests": LIMIT, "per": "hour", "burst": LIMIT}]
        }
    });
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder(config.to_string()).upstream(upstream.addr()).start()?;
    let envoy = Arc::new(envoy);

    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (envoy, start, key) = (Arc::clone(&envoy), Arc::clone(&start), alice.key.clone());
            std::thread::spawn(move || -> Result<Vec<Answer>> {
                start.wait();
                (0..REQUESTS_PER_CLIENT)
                    .map(|_| get(&envoy, "/v1/things", &[("x-api-key", key.as_str())]))
                    .collect()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.join().expect("client thread panicked")?);
    }
    let total = (CLIENTS * REQUESTS_PER_CLIENT) as u64;
    assert_eq!(answers.len() as u64, total);

    let per_worker = connections_per_worker(&envoy)?;
    assert!(
        per_worker.len() == 2 && per_worker.iter().all(|&n| n > 0),
        "both workers must take connections for this to test anything: {per_worker:?}"
    );

    let (allowed, limited): (Vec<&Answer>, Vec<&Answer>) = answers.iter().partition(|a| a.status == 200);
    assert_eq!(
        allowed.len() as u64,
        LIMIT,
        "statuses: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(limited.len() as u64, total - LIMIT);

    // Admitted: the echo's body, and (with `headers: true`) each a distinct remaining count, 19 down to 0.
    let mut remaining: Vec<u64> = allowed
        .iter()
        .map(|a| {
            let echo: Value = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {a:?}"));
            assert_eq!(echo["path"], "/v1/things", "{a:?}");
            let policy = sf_items(a.header("ratelimit-policy").unwrap_or_else(|| panic!("{a:?}")));
            assert_eq!(param(&policy, "per-consumer", "q"), Some(LIMIT), "{a:?}");
            assert_eq!(param(&policy, "per-consumer", "w"), Some(3600), "{a:?}");
            let state = sf_items(a.header("ratelimit").unwrap_or_else(|| panic!("{a:?}")));
            param(&state, "per-consumer", "r").unwrap_or_else(|| panic!("no r: {a:?}"))
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..LIMIT).collect::<Vec<_>>(), "each admission took exactly one unit");

    // Refused: 429, when to retry (at most one emission interval, 3600 s / N), the fields, OpenAI's error shape.
    for answer in &limited {
        assert_eq!(answer.status, 429, "{answer:?}");
        let retry = answer.retry_after()?;
        assert!((1..=3600_u64.div_ceil(LIMIT)).contains(&retry), "Retry-After {retry}: {answer:?}");
        let policy = sf_items(answer.header("ratelimit-policy").unwrap_or_else(|| panic!("{answer:?}")));
        assert_eq!(param(&policy, "per-consumer", "q"), Some(LIMIT), "{answer:?}");
        assert_eq!(param(&policy, "per-consumer", "w"), Some(3600), "{answer:?}");
        let state = sf_items(answer.header("ratelimit").unwrap_or_else(|| panic!("{answer:?}")));
        assert_eq!(param(&state, "per-consumer", "r"), Some(0), "{answer:?}");
        let reset = param(&state, "per-consumer", "t").unwrap_or_else(|| panic!("no t: {answer:?}"));
        assert!((3600 - 120..=3600).contains(&reset), "the whole quota returns in about an hour: {answer:?}");
        assert_eq!(answer.openai_error()?, ("rate_limit_error".into(), "rate_limited".into()), "{answer:?}");
        assert!(answer.body.contains("per-consumer"), "the message names the rule: {}", answer.body);
    }

    let received = upstream.received();
    assert_eq!(received.len() as u64, LIMIT, "the upstream saw only the admitted requests");
    assert!(received.iter().all(|r| r.header("x-tollgate-consumer") == Some("alice")));
    assert_eq!(rule_counter(&envoy, "per-consumer", "allowed", LIMIT)?, LIMIT);
    assert_eq!(rule_counter(&envoy, "per-consumer", "limited", total - LIMIT)?, total - LIMIT);

    // The key is the consumer: bob's quota is untouched by alice's.
    let other = get(&envoy, "/v1/things", &[("x-api-key", bob.key.as_str())])?;
    assert_eq!(other.status, 200, "{other:?}");
    let state = sf_items(other.header("ratelimit").context("no RateLimit on bob's reply")?);
    assert_eq!(param(&state, "per-consumer", "r"), Some(LIMIT - 1), "{other:?}");
    assert_eq!(
        upstream.received().last().and_then(|r| r.header("x-tollgate-consumer").map(str::to_owned)),
        Some("bob".into())
    );
    assert_eq!(rule_counter(&envoy, "per-consumer", "allowed", LIMIT + 1)?, LIMIT + 1);
    assert_eq!(envoy.counter(&rule_stat("per-consumer", "limited"))?, Some(total - LIMIT));
    Ok(())
}

/// The token rule's size, per day (a calendar window: a day boundary mid-test is far less likely than an hour one).
const TOKEN_LIMIT: u64 = 200;

fn chat_body(text: &str, max_tokens: u64) -> String {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens})
        .to_string()
}

/// What the limiter reserves for a body: `estimate_prompt_tokens` (characters / 4, rounded up) plus
/// `max_tokens`.
fn reservation(body: &str, max_tokens: u64) -> u64 {
    (body.chars().count() as u64).div_ceil(4) + max_tokens
}

/// Prompt plus completion tokens of an OpenAI chat completion, as the client received it.
fn usage_total(answer: &Answer) -> u64 {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    let usage = &body["usage"];
    usage["prompt_tokens"].as_u64().unwrap_or_else(|| panic!("no usage: {answer:?}"))
        + usage["completion_tokens"].as_u64().unwrap_or_else(|| panic!("no usage: {answer:?}"))
}

#[test]
fn a_token_budget_stops_a_request_before_the_provider_and_refunds_what_was_not_used() -> Result<()> {
    let mock = MockLlm::new(ProviderKind::OpenAi, "openai-key").start()?;
    let config = json!({
        "ai": {
            "providers": [{"name": "openai", "kind": "openai", "cluster": "mock_openai",
                           "base_url": "https://api.openai.com/v1", "api_key": "openai-key"}],
            "models": [{"name": "gpt-4o", "provider": "openai"}],
            "cluster_header": CLUSTER_HEADER
        },
        "ratelimit": {"rules": [{"name": "tpd", "key": ["model"], "tokens": TOKEN_LIMIT, "per": "day"}]}
    });
    let envoy = Envoy::builder(config.to_string())
        .route_by_header(CLUSTER_HEADER)
        .cluster("mock_openai", mock.addr())
        .start()?;
    let chat = |body: &str| send(&envoy, "/v1/chat/completions", &[], Some(body));

    // More than the whole budget: refused before anything is forwarded.
    let big = chat_body("write me a novel", 1_000);
    let refused = chat(&big)?;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.openai_error()?, ("rate_limit_error".into(), "token_limit".into()), "{refused:?}");
    assert!(refused.body.contains("tpd"), "the message names the rule: {}", refused.body);
    assert!((1..=86_400).contains(&refused.retry_after()?), "{refused:?}");
    // Token rules are not advertised: the draft has no quota unit for tokens.
    assert_eq!(refused.header("ratelimit-policy"), None, "{refused:?}");
    assert!(mock.received().is_empty(), "the provider received a refused request: {:?}", mock.received());
    assert_eq!(rule_counter(&envoy, "tpd", "limited", 1)?, 1);
    assert_eq!(envoy.counter(&rule_stat("tpd", "tokens_reserved"))?.unwrap_or(0), 0);

    // A small request fits; its hold is the estimate, and settling swaps it for the usage the mock reports.
    let (small_max, wide_max) = (100, 150);
    let small = chat_body("hi", small_max);
    let held = reservation(&small, small_max);
    let first = chat(&small)?;
    assert_eq!(first.status, 200, "{first:?}");
    let used = usage_total(&first);
    assert!(used < held, "the mock's usage ({used}) must be smaller than the hold ({held})");
    assert_eq!(mock.received().len(), 1);
    assert_eq!(rule_counter(&envoy, "tpd", "tokens_reserved", held)?, held);
    assert_eq!(rule_counter(&envoy, "tpd", "tokens_settled", used)?, used);
    assert_eq!(rule_counter(&envoy, "tpd", "tokens_refunded", held - used)?, held - used);

    // This one fits in what the refund gave back, and would not have fitted beside the unsettled hold.
    let wide = chat_body("hello again", wide_max);
    let wanted = reservation(&wide, wide_max);
    assert!(
        wanted > TOKEN_LIMIT - held && wanted <= TOKEN_LIMIT - used,
        "test arithmetic: {wanted} {held} {used}"
    );
    let second = chat(&wide)?;
    assert_eq!(
        second.status, 200,
        "admitted only if the first request's unused tokens came back: {second:?}"
    );
    assert_eq!(mock.received().len(), 2);
    let used_second = usage_total(&second);
    assert_eq!(rule_counter(&envoy, "tpd", "tokens_reserved", held + wanted)?, held + wanted);
    assert_eq!(rule_counter(&envoy, "tpd", "tokens_settled", used + used_second)?, used + used_second);
    assert_eq!(rule_counter(&envoy, "tpd", "allowed", 2)?, 2);

    // Exactly what the two settled requests used is gone: a request wanting one token more than is left is
    // refused, one wanting exactly what is left is admitted.
    let left = TOKEN_LIMIT - used - used_second;
    let exact = (0..left)
        .find(|&m| reservation(&chat_body("ok", m), m) == left)
        .with_context(|| format!("test arithmetic: no max_tokens reserves exactly {left}"))?;
    let over = chat(&chat_body("ok", exact + 1))?;
    assert_eq!(over.status, 429, "{over:?}");
    assert_eq!(over.openai_error()?.1, "token_limit", "{over:?}");
    let third = chat(&chat_body("ok", exact))?;
    assert_eq!(third.status, 200, "the last {left} tokens are usable: {third:?}");
    assert_eq!(mock.received().len(), 3, "the provider received a refused request");
    assert_eq!(envoy.counter(&rule_stat("tpd", "limited"))?, Some(2));
    assert_eq!(rule_counter(&envoy, "tpd", "allowed", 3)?, 3);
    Ok(())
}

#[test]
fn a_shadow_rule_counts_what_it_would_refuse_and_refuses_nothing() -> Result<()> {
    let config = json!({"ratelimit": {
        "headers": true,
        "rules": [{"name": "team-trial", "key": [{"header": "x-team"}], "requests": 2, "per": "minute",
                   "shadow": true}]
    }});
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder(config.to_string()).upstream(upstream.addr()).start()?;
    for i in 0..5 {
        let answer = get(&envoy, "/v1/things", &[("x-team", "red")])?;
        assert_eq!(answer.status, 200, "request {i}: {answer:?}");
        assert_eq!(answer.header("retry-after"), None, "{answer:?}");
        // A shadow rule is reported through stats only, never to clients.
        assert_eq!(answer.header("ratelimit"), None, "{answer:?}");
        assert_eq!(answer.header("ratelimit-policy"), None, "{answer:?}");
    }
    assert_eq!(upstream.received().len(), 5);
    assert_eq!(rule_counter(&envoy, "team-trial", "allowed", 2)?, 2);
    assert_eq!(rule_counter(&envoy, "team-trial", "shadow_limited", 3)?, 3);
    assert_eq!(envoy.counter(&rule_stat("team-trial", "limited"))?.unwrap_or(0), 0);
    Ok(())
}

#[test]
fn a_global_rule_without_a_service_stops_envoy_naming_the_json_path() -> Result<()> {
    let config = json!({"ratelimit": {"rules": [{"name": "fleet", "mode": "global"}]}});
    let log = match Envoy::builder(config.to_string()).start() {
        Ok(envoy) => bail!("Envoy started with a global rule and no service; log:\n{}", envoy.log()),
        Err(StartError::Exited { log, .. }) => log,
        Err(other) => return Err(other.into()),
    };
    let line = "configuration rejected: ratelimit.rules[0].mode: a global rule needs ratelimit.service";
    assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    Ok(())
}

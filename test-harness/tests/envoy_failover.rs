//! End to end in a real Envoy (`--concurrency 2`): provider failover and cost.
//! - `gpt-4o` is served by an OpenAI-format mock with a Gemini-format mock as its fallback. When OpenAI
//!   answers 503, new requests (on either worker: the cooldown is in shared data) go to Gemini, and back to
//!   OpenAI once the cooldown ends. A provider Envoy cannot reach at all (its own 503, which the client gets
//!   as a 502 `upstream_failure`) fails over the same way.
//! - Prices from `ratelimit.prices`: `x-tollgate-cost` on answers and the per-consumer, per-model cost
//!   counters Envoy reports match the price table and the usage the mocks reported.
//!
//! Needs Envoy and the built module: `./build.sh test` provides both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tollgate_harness::envoy::{Answer, Envoy};
use tollgate_harness::mock_llm::{echo_text, MockLlm, ProviderKind};
use tollgate_harness::upstream::EchoUpstream;

const CLUSTER_HEADER: &str = "x-tollgate-cluster";
/// Long enough for a loaded machine to send the cooling-down requests before it ends.
const COOLDOWN_SECS: u64 = 8;

struct Gateway {
    openai: EchoUpstream,
    gemini: EchoUpstream,
    envoy: Envoy,
}

/// A loopback address nothing listens on (bound, then released).
fn dead_addr() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn start() -> Gateway {
    let config = json!({
        "ai": {
            "providers": [
                {"name": "openai", "kind": "openai", "cluster": "mock_openai", "api_key": "openai-key"},
                {"name": "gemini", "kind": "gemini", "cluster": "mock_gemini", "api_key": "gemini-key"},
                {"name": "down", "kind": "openai", "cluster": "mock_down", "api_key": "down-key"}
            ],
            "models": [
                {"name": "gpt-4o", "provider": "openai",
                 "fallbacks": [{"provider": "gemini", "model": "gemini-2.5-flash"}]},
                {"name": "resilient", "provider": "down", "model": "gpt-4o",
                 "fallbacks": [{"provider": "gemini", "model": "gemini-2.5-flash"}]}
            ],
            "failover": {"cooldown_seconds": COOLDOWN_SECS},
            "cluster_header": CLUSTER_HEADER
        },
        "ratelimit": {
            "cost_header": true,
            "currency": "USD",
            "prices": {"models": {
                "gpt-4o": {"input": 2.5, "output": 10.0},
                "resilient": {"input": 1.0, "output": 4.0}
            }}
        }
    });
    let openai = MockLlm::new(ProviderKind::OpenAi, "openai-key").start().unwrap();
    let gemini = MockLlm::new(ProviderKind::Gemini, "gemini-key").start().unwrap();
    let envoy = Envoy::builder(config.to_string())
        .route_by_header(CLUSTER_HEADER)
        .cluster("mock_openai", openai.addr())
        .cluster("mock_gemini", gemini.addr())
        .cluster("mock_down", dead_addr())
        .start()
        .unwrap();
    Gateway { openai, gemini, envoy }
}

fn chat(gateway: &Gateway, model: &str, text: &str) -> Answer {
    let body = json!({"model": model, "messages": [{"role": "user", "content": text}]});
    gateway.envoy.post_json("/v1/chat/completions", &[], &body.to_string()).unwrap()
}

/// Which mock served each of `n` requests (several connections, so both workers take part).
fn served_by(gateway: &Gateway, model: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let answer = chat(gateway, model, "hello there");
            assert_eq!(answer.status, 200, "{answer:?}");
            assert_eq!(answer.json().unwrap()["choices"][0]["message"]["content"], echo_text("hello there"));
            answer.header("x-tollgate-provider").unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_failing_provider_hands_its_model_to_the_fallback_and_gets_it_back_after_the_cooldown() {
    let gateway = start();
    assert_eq!(served_by(&gateway, "gpt-4o", 4), ["openai"; 4]);

    // OpenAI answers 503: the client gets the error, and OpenAI cools down.
    let failed = chat(&gateway, "gpt-4o", "mock:status=503");
    assert_eq!(failed.status, 502, "{failed:?}");
    let cooled_at = Instant::now();
    gateway.openai.clear();
    gateway.gemini.clear();
    assert_eq!(served_by(&gateway, "gpt-4o", 6), ["gemini"; 6]);
    assert!(gateway.openai.received().is_empty(), "OpenAI was asked while cooling down");
    let to_gemini = gateway.gemini.received();
    assert_eq!(to_gemini.len(), 6);
    assert!(to_gemini.iter().all(|r| r.path == "/v1beta/models/gemini-2.5-flash:generateContent"));
    let wait = Duration::from_secs(5);
    let stat = |metric: &str, provider: &str| {
        format!("wasmcustom.tollgate_ai_{metric}.provider.{provider}.model.gpt-4o.consumer.anonymous")
    };
    assert_eq!(gateway.envoy.wait_for_counter(&stat("failovers", "gemini"), 6, wait).unwrap(), 6);
    assert_eq!(gateway.envoy.wait_for_counter(&stat("cooldowns", "openai"), 1, wait).unwrap(), 1);

    // After the cooldown, OpenAI serves again.
    let left = Duration::from_secs(COOLDOWN_SECS).saturating_sub(cooled_at.elapsed());
    std::thread::sleep(left + Duration::from_millis(300));
    assert_eq!(served_by(&gateway, "gpt-4o", 4), ["openai"; 4]);

    // A provider Envoy cannot connect to (Envoy's own 503) fails over too.
    let unreachable = chat(&gateway, "resilient", "hello there");
    assert_eq!(unreachable.status, 502, "{unreachable:?}");
    assert_eq!(unreachable.openai_error().unwrap().1, "upstream_failure", "{unreachable:?}");
    assert_eq!(served_by(&gateway, "resilient", 3), ["gemini"; 3]);
}

#[test]
fn costs_follow_the_price_table() {
    let gateway = start();
    // "hello there" in, "echo: hello there" out: the mocks count 2 input and 3 output tokens.
    let answer = chat(&gateway, "gpt-4o", "hello there");
    assert_eq!(answer.status, 200, "{answer:?}");
    let usage = &answer.json().unwrap()["usage"];
    assert_eq!((&usage["prompt_tokens"], &usage["completion_tokens"]), (&json!(2), &json!(3)));
    // 2 × $2.50 / 1M + 3 × $10 / 1M = $0.000035.
    assert_eq!(answer.header("x-tollgate-cost"), Some("0.000035 USD"));
    for _ in 0..3 {
        assert_eq!(chat(&gateway, "gpt-4o", "hello there").status, 200);
    }
    let cost = "wasmcustom.tollgate_ratelimit.cost_micros.anonymous.gpt-4o";
    assert_eq!(gateway.envoy.wait_for_counter(cost, 4 * 35, Duration::from_secs(5)).unwrap(), 4 * 35);
    let throttled = chat(&gateway, "gpt-4o", "mock:status=429");
    assert_eq!(throttled.status, 429, "{throttled:?}");
    let body: Value = throttled.json().unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(throttled.header("x-tollgate-cost"), None);
    assert_eq!(gateway.envoy.counter(cost).unwrap(), Some(4 * 35), "an error costs nothing");
}

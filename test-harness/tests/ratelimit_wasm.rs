//! Rate limits through the real `dist/tollgate.wasm`: two worker VMs share one host store, as Envoy's
//! workers share one shared-data map, so a limit holds exactly across them; a token budget on an AI route
//! refuses the request whose reservation does not fit before it goes upstream, and refunds after settling.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use serde_json::json;
use tollgate_harness::host::{Host, Request, Response, Vm};

const LIMIT: usize = 5;

fn host() -> Host {
    Host::load(tollgate_harness::repo_root().join("dist/tollgate.wasm")).expect("run ./build.sh build first")
}

#[test]
fn two_workers_admit_exactly_the_limit() {
    let host = host();
    let config = json!({"ratelimit": {"rules": [{"name": "all", "requests": LIMIT, "per": "minute"}]}});
    let mut workers = host.plugin(config.to_string()).workers(2).start_all().unwrap();
    let (mut admitted, mut refused) = (0, 0);
    for i in 0..4 * LIMIT {
        let ex = workers[i % 2].send(Request::get("/api/orders")).run().unwrap();
        if ex.upstream.is_some() {
            assert_eq!(ex.downstream.status, 200);
            admitted += 1;
        } else {
            assert_eq!(ex.downstream.status, 429);
            assert!(ex.downstream.header("retry-after").is_some_and(|s| s.parse::<u64>().unwrap() > 0));
            assert!(ex.downstream.header("ratelimit-policy").is_some_and(|v| v.contains("\"all\";q=5")));
            let body: serde_json::Value = serde_json::from_str(ex.downstream.body_str()).unwrap();
            assert!(body["error"]["message"].is_string(), "{body}");
            refused += 1;
        }
    }
    assert_eq!((admitted, refused), (LIMIT, 3 * LIMIT));
}

fn ai_workers(host: &Host) -> Vec<Vm> {
    let config = json!({
        "ratelimit": {"rules": [{"name": "tokens", "tokens": 200, "per": "minute"}]},
        "ai": {
            "providers": [{"name": "claude", "kind": "anthropic", "cluster": "anthropic_cluster",
                           "api_key": "sk-ant-secret", "api_version": "2023-06-01"}],
            "models": [{"name": "claude-sonnet", "provider": "claude", "model": "claude-sonnet-4-5"}]
        }
    });
    host.plugin(config.to_string()).workers(2).start_all().unwrap()
}

/// A chat reserving about 122 tokens (100 output plus its body's estimate).
fn chat() -> Request {
    let body = json!({"model": "claude-sonnet", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello!"}]});
    Request::post("/v1/chat/completions").header("content-type", "application/json").body(body.to_string())
}

fn answer() -> Response {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 3}
    });
    Response::status(200).header("content-type", "application/json").body(body.to_string())
}

#[test]
fn a_token_budget_refuses_before_upstream_and_refunds_after_settling() {
    let host = host();
    let mut workers = ai_workers(&host);
    let (left, right) = workers.split_at_mut(1);
    // Held open on worker 0: its estimate stays reserved, so worker 1's request does not fit.
    let mut open = left[0].stream(chat()).unwrap();
    open.send_request().unwrap();
    assert!(open.reached_upstream());
    let refused = right[0].send(chat()).run().unwrap();
    assert!(refused.upstream.is_none(), "refused before going upstream");
    assert_eq!(refused.downstream.status, 429);
    assert!(refused.downstream.header("retry-after").is_some());
    let done = open.finish(answer()).unwrap();
    assert_eq!(done.downstream.status, 200);
    // Settled at 12 tokens each: requests one at a time keep fitting, where two at once did not.
    for _ in 0..2 {
        let ex = right[0].send(chat()).respond_with(answer()).run().unwrap();
        assert_eq!(ex.downstream.status, 200);
    }
}

#[test]
fn a_provider_error_without_usage_refunds_the_whole_estimate() {
    let host = host();
    let mut workers = ai_workers(&host);
    let first = workers[0].send(chat()).respond_with(Response::status(503)).run().unwrap();
    assert!(first.upstream.is_some());
    // The provider error carried no usage: the whole estimate came back.
    let second = workers[1].send(chat()).respond_with(answer()).run().unwrap();
    assert_eq!(second.downstream.status, 200);
}

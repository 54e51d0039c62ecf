//! Global rate limits through the real `dist/tollgate.wasm`: the filter asks a rate limit service over
//! `grpc_call` (played here by a closure keeping one count, as one service does for a fleet), so two worker
//! VMs admit exactly the service's limit between them; a service that does not answer in time is met by
//! each rule's failure mode; an AI request's token rule is asked once its body is in, and the rest of its
//! usage is reported from the root context after the stream ends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tollgate_harness::host::{CallKind, GrpcReply, Host, OutboundCall, Reply, Request, Response};
use tollgate_ratelimit::rls::{RateLimitRequest, RateLimitResponse};

fn host() -> Host {
    Host::load(tollgate_harness::repo_root().join("dist/tollgate.wasm")).expect("run ./build.sh build first")
}

/// A rate limit service with one limit per rule name, counting hits per descriptor.
#[derive(Clone, Default)]
struct Service {
    counts: Arc<Mutex<HashMap<String, u64>>>,
    limit: u64,
}

impl Service {
    fn answer(&self, call: &OutboundCall) -> Option<Reply> {
        if call.kind != CallKind::Grpc || call.cluster != "rls" {
            return None;
        }
        assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
        assert_eq!(call.method, "ShouldRateLimit");
        let request = RateLimitRequest::from_bytes(&call.body.0).unwrap();
        let key = format!("{}:{:?}", request.domain, request.entries());
        let mut counts = self.counts.lock().unwrap();
        let used = counts.entry(key).or_default();
        let over = *used + u64::from(request.hits_addend) > self.limit;
        if !over {
            *used += u64::from(request.hits_addend);
        }
        let remaining = u32::try_from(self.limit.saturating_sub(*used)).unwrap();
        Some(GrpcReply::ok(RateLimitResponse::single(over, Some((3, 2)), remaining, 42).to_bytes()).into())
    }

    fn total(&self) -> u64 {
        self.counts.lock().unwrap().values().sum()
    }
}

fn config(rules: serde_json::Value) -> String {
    json!({
        "ratelimit": {"rules": rules, "service": {"cluster": "rls", "domain": "edge", "timeout_ms": 50}},
        "ai": {
            "providers": [{"name": "oai", "kind": "openai", "cluster": "openai_cluster", "api_key": "sk-secret"}],
            "models": [{"name": "gpt-4o", "provider": "oai", "model": "gpt-4o"}]
        }
    })
    .to_string()
}

#[test]
fn two_workers_admit_exactly_the_services_limit() {
    let host = host();
    let service = Service { limit: 3, ..Service::default() };
    let answering = service.clone();
    host.respond_to_calls(move |call| answering.answer(call));
    let rules = json!([{"name": "fleet", "mode": "global", "key": [{"header": "x-team"}]}]);
    let mut workers = host.plugin(config(rules)).workers(2).start_all().unwrap();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let request = Request::get("/api/orders").header("x-team", "red");
        let ex = workers[i % 2].send(request).run().unwrap();
        assert_eq!(ex.upstream.is_some(), ex.downstream.status == 200, "refused requests never go upstream");
        if ex.downstream.status == 429 {
            assert_eq!(ex.downstream.header("retry-after"), Some("42"));
            let body: serde_json::Value = serde_json::from_str(ex.downstream.body_str()).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(ex.downstream.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    let calls = host.outbound_calls();
    assert_eq!(calls.len(), 8, "one question per request");
    let sent = RateLimitRequest::from_bytes(&calls[0].body.0).unwrap();
    assert_eq!(sent.entries(), [("rule", "fleet"), ("x-team", "red")]);
    assert_eq!(calls[0].timeout, Some(Duration::from_millis(50)));
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.allowed"), Some(3));
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.limited"), Some(5));
}

#[test]
fn a_silent_service_is_met_by_each_rules_failure_mode() {
    for (mode, status) in [("open", 200), ("closed", 503)] {
        let host = host();
        host.on_call("rls", Reply::Never);
        let rules = json!([{"name": "fleet", "mode": "global", "failure_mode": mode}]);
        let mut vm = host.plugin(config(rules)).start().unwrap();
        let ex = vm.send(Request::get("/api/orders")).run().unwrap();
        assert_eq!(ex.downstream.status, status, "failure_mode {mode}");
        assert_eq!(ex.upstream.is_some(), status == 200);
        assert_eq!(host.metric(&format!("tollgate_ratelimit.rule.fleet.failed_{mode}")), Some(1));
    }
}

#[test]
fn an_unknown_cluster_fails_like_a_silent_service() {
    let host = host();
    host.clusters(["openai_cluster"]);
    let rules = json!([{"name": "fleet", "mode": "global", "failure_mode": "closed"}]);
    let mut vm = host.plugin(config(rules)).start().unwrap();
    let ex = vm.send(Request::get("/api/orders")).run().unwrap();
    assert_eq!(ex.downstream.status, 503);
    let body: serde_json::Value = serde_json::from_str(ex.downstream.body_str()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_service_unavailable");
}

#[test]
fn an_ai_request_is_asked_on_its_body_and_reports_its_usage_after_the_stream() {
    let host = host();
    let service = Service { limit: 1_000, ..Service::default() };
    let answering = service.clone();
    host.respond_to_calls(move |call| answering.answer(call));
    let rules = json!([{"name": "fleet-tokens", "mode": "global", "counts": "tokens", "key": ["model"]}]);
    let mut vm = host.plugin(config(rules)).start().unwrap();
    let body =
        json!({"model": "gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": "Hello!"}]});
    let body = body.to_string();
    let estimate = u64::try_from(body.len().div_ceil(4)).unwrap();
    let answer = json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 290, "total_tokens": 300}
    });
    let request =
        Request::post("/v1/chat/completions").header("content-type", "application/json").body(&body);
    let response = Response::status(200).header("content-type", "application/json").body(answer.to_string());
    let ex = vm.send(request).respond_with(response).run().unwrap();
    assert_eq!(ex.downstream.status, 200, "{}", ex.downstream.body_str());
    let upstream = ex.upstream.expect("the body went upstream after the service admitted it");
    assert_eq!(upstream.header("authorization"), Some("Bearer sk-secret"));
    assert_eq!(service.total(), estimate, "the prompt estimate was added before forwarding");
    vm.advance(Duration::from_millis(200)).unwrap();
    assert_eq!(service.total(), 300, "the rest of the usage arrived from the root context");
    let calls = host.outbound_calls();
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[1].context_id, calls[0].context_id, "the report is not the stream's own call");
}

//! Global rules as the chain runs them: the request waits for the rate limit service at its head (or, for an
//! AI request, once its body is in), is refused or let through on the answer, applies each rule's failure
//! mode when there is none, and reports a token rule's remaining usage when the stream ends.

use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{BodyVerdict, CallOutcome, Callout, GrpcCall, RequestHead, ResponseHead, Verdict};
use tollgate_ratelimit::rls::{RateLimitRequest, RateLimitResponse};

use crate::{Pipeline, USAGE_REPORT_PURPOSE};

const KEY: &str = "tg_test_key_alice";

fn pipeline(rules: Value) -> (Pipeline, MemoryHost) {
    use sha2::{Digest, Sha256};
    let config = json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [{"id": "k1", "sha256": hex::encode(Sha256::digest(KEY))}]}]},
        "ratelimit": {"rules": rules, "headers": true, "service": {"cluster": "rls", "domain": "edge"}},
        "ai": {
            "providers": [{"name": "oai", "kind": "openai", "cluster": "openai_cluster", "api_key": "sk-secret"}],
            "models": [{"name": "gpt-4o", "provider": "oai", "model": "gpt-4o"}]
        }
    });
    let pipeline = Pipeline::from_json(config.to_string().as_bytes()).unwrap();
    let host = MemoryHost::default();
    pipeline.prepare(host.ports()).unwrap();
    (pipeline, host)
}

fn head(path: &str) -> RequestHead {
    RequestHead::from_pairs([
        (":method", "POST"),
        (":path", path),
        (":authority", "gateway.example"),
        ("authorization", &format!("Bearer {KEY}")),
    ])
}

fn grpc(verdict_call: Option<Callout>) -> GrpcCall {
    match verdict_call {
        Some(Callout::Grpc(call)) => call,
        other => panic!("expected a gRPC call, got {other:?}"),
    }
}

fn head_call(verdict: Verdict) -> GrpcCall {
    grpc(match verdict {
        Verdict::Call(call) => Some(call),
        _ => None,
    })
}

fn sent(call: &GrpcCall) -> RateLimitRequest {
    assert_eq!((call.cluster.as_str(), call.method.as_str()), ("rls", "ShouldRateLimit"));
    RateLimitRequest::from_bytes(&call.message).unwrap()
}

fn ok(remaining: u32) -> CallOutcome {
    let body = RateLimitResponse::single(false, Some((5, 2)), remaining, 30).to_bytes();
    CallOutcome::Response { status: 200, headers: Vec::new(), body }
}

fn over() -> CallOutcome {
    let body = RateLimitResponse::single(true, Some((5, 2)), 0, 12).to_bytes();
    CallOutcome::Response { status: 200, headers: Vec::new(), body }
}

fn unavailable() -> CallOutcome {
    CallOutcome::Failed { reason: "gRPC status 14".into() }
}

#[test]
fn a_head_waits_for_the_service_and_goes_on_with_its_ratelimit_fields() {
    let (pipeline, host) = pipeline(json!([{"name": "fleet", "mode": "global", "key": ["consumer"]}]));
    let mut stream = pipeline.stream();
    let call = head_call(pipeline.on_request_headers(&mut stream, &head("/internal/report"), host.ports()));
    let request = sent(&call);
    assert_eq!((request.domain.as_str(), request.hits_addend), ("edge", 1));
    assert_eq!(request.entries(), [("rule", "fleet"), ("consumer", "alice")]);
    let Verdict::Continue(edits) = pipeline.on_call_response(&mut stream, &ok(4), host.ports()) else {
        panic!("expected the request to go on");
    };
    assert!(edits.set.iter().any(|(_, v)| v == "alice"), "auth's edits survive the wait: {edits:?}");
    let Verdict::Continue(response) =
        pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports())
    else {
        panic!("expected continue");
    };
    assert!(response.set.contains(&("ratelimit".into(), "\"fleet\";r=4;t=30".into())), "{response:?}");
}

#[test]
fn over_the_limit_the_client_gets_429_and_nothing_goes_upstream() {
    let (pipeline, host) = pipeline(json!([{"name": "fleet", "mode": "global"}]));
    let mut stream = pipeline.stream();
    head_call(pipeline.on_request_headers(&mut stream, &head("/internal/report"), host.ports()));
    let Verdict::Respond(reply) = pipeline.on_call_response(&mut stream, &over(), host.ports()) else {
        panic!("expected a refusal");
    };
    assert_eq!(reply.status, 429);
    assert!(reply.headers.contains(&("retry-after".into(), "12".into())));
    // A refused request is over: its response phase is not ours.
    let verdict = pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports());
    assert_eq!(verdict, Verdict::Continue(Default::default()));
}

#[test]
fn without_an_answer_open_rules_admit_and_closed_rules_refuse_with_503() {
    let (pipeline, host) = pipeline(json!([
        {"name": "lenient", "mode": "global", "failure_mode": "open"},
        {"name": "strict", "mode": "global", "failure_mode": "closed", "timeout_ms": 20}
    ]));
    let mut stream = pipeline.stream();
    let first = head_call(pipeline.on_request_headers(&mut stream, &head("/internal/report"), host.ports()));
    assert_eq!(sent(&first).entries(), [("rule", "lenient")]);
    let second = head_call(pipeline.on_call_response(&mut stream, &unavailable(), host.ports()));
    assert_eq!(sent(&second).entries(), [("rule", "strict")]);
    assert_eq!(second.timeout, std::time::Duration::from_millis(20));
    let Verdict::Respond(reply) = pipeline.on_call_response(&mut stream, &unavailable(), host.ports()) else {
        panic!("expected a refusal");
    };
    assert_eq!(reply.status, 503);
    assert_eq!(host.metric("tollgate_ratelimit.rule.lenient.failed_open"), 1);
    assert_eq!(host.metric("tollgate_ratelimit.rule.strict.failed_closed"), 1);
}

#[test]
fn local_rules_decide_after_the_global_ones_admit() {
    let (pipeline, host) = pipeline(json!([
        {"name": "fleet", "mode": "global"},
        {"name": "local", "requests": 1, "per": "minute"}
    ]));
    let mut first = pipeline.stream();
    head_call(pipeline.on_request_headers(&mut first, &head("/internal/report"), host.ports()));
    assert!(matches!(pipeline.on_call_response(&mut first, &ok(3), host.ports()), Verdict::Continue(_)));
    let mut second = pipeline.stream();
    head_call(pipeline.on_request_headers(&mut second, &head("/internal/report"), host.ports()));
    let Verdict::Respond(reply) = pipeline.on_call_response(&mut second, &ok(2), host.ports()) else {
        panic!("the local rule refuses the second request");
    };
    assert_eq!(reply.status, 429);
    assert!(String::from_utf8_lossy(&reply.body).contains("local"));
}

fn chat() -> Vec<u8> {
    json!({"model": "gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": "Hello!"}]})
        .to_string()
        .into_bytes()
}

#[test]
fn an_ai_request_asks_with_its_prompt_estimate_and_reports_the_rest_when_done() {
    let (pipeline, host) = pipeline(
        json!([{"name": "fleet-tokens", "mode": "global", "counts": "tokens", "key": ["consumer", "model"]}]),
    );
    let mut stream = pipeline.stream();
    let verdict = pipeline.on_request_headers(&mut stream, &head("/v1/chat/completions"), host.ports());
    assert_eq!(verdict, Verdict::AwaitBody);
    let body = chat();
    let call = grpc(match pipeline.on_request_body(&mut stream, &body, true, host.ports()) {
        BodyVerdict::Call(call) => Some(call),
        _ => None,
    });
    let request = sent(&call);
    let estimate = u32::try_from(body.len().div_ceil(4)).unwrap();
    assert_eq!(request.hits_addend, estimate);
    assert_eq!(request.entries(), [("rule", "fleet-tokens"), ("consumer", "alice"), ("model", "gpt-4o")]);
    let BodyVerdict::Continue { head, body: Some(forwarded) } =
        pipeline.on_body_call_response(&mut stream, &ok(1000), host.ports())
    else {
        panic!("expected the body to go upstream");
    };
    assert!(head.set.iter().any(|(n, _)| n == "authorization"), "the provider key is added: {head:?}");
    let forwarded: Value = serde_json::from_slice(&forwarded).unwrap();
    assert_eq!(forwarded["model"], "gpt-4o");

    let response = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    pipeline.on_response_headers(&mut stream, &response, host.ports());
    let answer = json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 40, "total_tokens": 50}
    });
    pipeline.on_response_body(&mut stream, answer.to_string().as_bytes(), true, host.ports());
    let reports = pipeline.on_stream_done(&mut stream, host.ports());
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].purpose, USAGE_REPORT_PURPOSE);
    let report = grpc(Some(reports[0].call.clone()));
    assert_eq!(sent(&report).hits_addend, 50 - estimate, "the rest of the 50 tokens used");
    assert!(pipeline.on_stream_done(&mut stream, host.ports()).is_empty(), "reported once");
    assert!(pipeline.tick_period().is_some(), "reports leave from the root context's tick");
}

#[test]
fn an_ai_request_over_the_global_token_limit_never_reaches_the_provider() {
    let (pipeline, host) = pipeline(json!([{"name": "fleet-tokens", "mode": "global", "counts": "tokens"}]));
    let mut stream = pipeline.stream();
    pipeline.on_request_headers(&mut stream, &head("/v1/chat/completions"), host.ports());
    assert!(matches!(
        pipeline.on_request_body(&mut stream, &chat(), true, host.ports()),
        BodyVerdict::Call(_)
    ));
    let BodyVerdict::Respond(reply) = pipeline.on_body_call_response(&mut stream, &over(), host.ports())
    else {
        panic!("expected a refusal");
    };
    assert_eq!(reply.status, 429);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], "token_limit");
    assert!(pipeline.on_stream_done(&mut stream, host.ports()).is_empty(), "nothing to report");
}

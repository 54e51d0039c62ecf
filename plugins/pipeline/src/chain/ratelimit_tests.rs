//! Rate limits as the chain runs them: request rules at the head, token rules once an AI body is in, and
//! the reservation settled at the end of the response or released when the stream ends without one.

use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{BodyVerdict, LocalReply, RequestHead, ResponseHead, Verdict};

use crate::{Pipeline, Stream};

const KEY: &str = "tg_test_key_alice";

fn pipeline(rules: Value, host: &MemoryHost) -> Pipeline {
    pipeline_with(json!({"rules": rules, "headers": true}), host)
}

/// Alice's key, one Anthropic provider, and this `ratelimit` section.
fn pipeline_with(ratelimit: Value, host: &MemoryHost) -> Pipeline {
    use sha2::{Digest, Sha256};
    let config = json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [{"id": "k1", "sha256": hex::encode(Sha256::digest(KEY))}]}]},
        "ratelimit": ratelimit,
        "ai": {
            "providers": [{"name": "claude", "kind": "anthropic", "cluster": "anthropic_cluster",
                           "api_key": "sk-ant-secret", "api_version": "2023-06-01"}],
            "models": [{"name": "claude-sonnet", "provider": "claude", "model": "claude-sonnet-4-5"}]
        }
    });
    let pipeline = Pipeline::from_json(config.to_string().as_bytes()).unwrap();
    pipeline.prepare(host.ports()).unwrap();
    pipeline
}

fn head(path: &str) -> RequestHead {
    RequestHead::from_pairs([
        (":method", "POST"),
        (":path", path),
        (":authority", "gateway.example"),
        ("authorization", &format!("Bearer {KEY}")),
    ])
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// A chat asking for up to 100 output tokens; its body estimates to about 22 prompt tokens.
fn chat() -> Vec<u8> {
    json!({"model": "claude-sonnet", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello!"}]})
        .to_string()
        .into_bytes()
}

/// Sends a chat's head and body: the stream if it goes upstream, the reply if it is refused.
fn send_chat(pipeline: &Pipeline, host: &MemoryHost) -> Result<Stream, LocalReply> {
    let mut stream = pipeline.stream();
    let verdict = pipeline.on_request_headers(&mut stream, &head("/v1/chat/completions"), host.ports());
    assert_eq!(verdict, Verdict::AwaitBody, "an AI request is decided on its body");
    match pipeline.on_request_body(&mut stream, &chat(), true, host.ports()) {
        BodyVerdict::Continue { body: Some(_), .. } => Ok(stream),
        BodyVerdict::Respond(reply) => Err(reply),
        other => panic!("unexpected {other:?}"),
    }
}

/// Answers a forwarded chat with 9 input and 3 output tokens.
fn answer(pipeline: &Pipeline, stream: &mut Stream, host: &MemoryHost) {
    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(pipeline.on_response_headers(stream, &head, host.ports()), Verdict::AwaitBody);
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 3}
    });
    let verdict = pipeline.on_response_body(stream, body.to_string().as_bytes(), true, host.ports());
    assert!(matches!(verdict, BodyVerdict::Continue { .. }), "{verdict:?}");
}

fn tokens_rule() -> Value {
    json!([{"name": "tokens", "key": ["consumer"], "tokens": 200, "per": "minute"}])
}

#[test]
fn a_request_limit_admits_n_then_answers_429_with_retry_after() {
    let host = MemoryHost::default();
    let pipeline =
        pipeline(json!([{"name": "per-user", "key": ["consumer"], "requests": 2, "per": "minute"}]), &host);
    for _ in 0..2 {
        let mut stream = pipeline.stream();
        let verdict = pipeline.on_request_headers(&mut stream, &head("/api/orders"), host.ports());
        assert!(matches!(verdict, Verdict::Continue(_)), "{verdict:?}");
        let Verdict::Continue(edits) =
            pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports())
        else {
            panic!("expected continue")
        };
        assert!(edits.set.iter().any(|(n, _)| n == "ratelimit-policy"), "{edits:?}");
        pipeline.on_stream_done(&mut stream, host.ports());
    }
    let verdict = pipeline.on_request_headers(&mut pipeline.stream(), &head("/api/orders"), host.ports());
    let Verdict::Respond(reply) = verdict else { panic!("expected a refusal: {verdict:?}") };
    assert_eq!(reply.status, 429);
    assert!(header(&reply, "retry-after").is_some_and(|s| s.parse::<u64>().unwrap() > 0));
    assert!(header(&reply, "ratelimit").is_some_and(|v| v.contains("r=0")));
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("per-user"), "{body}");
}

#[test]
fn a_reservation_that_does_not_fit_is_refused_before_going_upstream() {
    let host = MemoryHost::default();
    let pipeline = pipeline(tokens_rule(), &host);
    let _first = send_chat(&pipeline, &host).unwrap();
    let reply = send_chat(&pipeline, &host).unwrap_err();
    assert_eq!(reply.status, 429);
    assert!(header(&reply, "retry-after").is_some());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(body["error"]["type"].is_string(), "OpenAI-shaped: {body}");
}

#[test]
fn settling_refunds_the_unused_estimate_and_is_not_charged_twice() {
    let host = MemoryHost::default();
    let pipeline = pipeline(tokens_rule(), &host);
    let mut first = send_chat(&pipeline, &host).unwrap();
    answer(&pipeline, &mut first, &host);
    pipeline.on_stream_done(&mut first, host.ports());
    // 12 tokens used, so a second estimate of about 122 fits; a third does not.
    let mut second = send_chat(&pipeline, &host).unwrap();
    assert!(send_chat(&pipeline, &host).is_err());
    answer(&pipeline, &mut second, &host);
    pipeline.on_stream_done(&mut second, host.ports());
    assert!(send_chat(&pipeline, &host).is_ok());
}

#[test]
fn a_stream_that_ends_without_a_response_releases_its_reservation() {
    let host = MemoryHost::default();
    let pipeline = pipeline(tokens_rule(), &host);
    let mut first = send_chat(&pipeline, &host).unwrap();
    assert!(send_chat(&pipeline, &host).is_err());
    pipeline.on_stream_done(&mut first, host.ports());
    let mut second = send_chat(&pipeline, &host).unwrap();
    // A reset after the response head: still no usage, still released once.
    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    pipeline.on_response_headers(&mut second, &head, host.ports());
    pipeline.on_stream_done(&mut second, host.ports());
    pipeline.on_stream_done(&mut second, host.ports());
    assert!(send_chat(&pipeline, &host).is_ok());
}

#[test]
fn an_ai_request_refused_by_the_gateway_gives_its_reservation_back() {
    let host = MemoryHost::default();
    let pipeline = pipeline(json!([{"name": "tokens", "tokens": 200, "per": "minute"}]), &host);
    let mut stream = pipeline.stream();
    pipeline.on_request_headers(&mut stream, &head("/v1/chat/completions"), host.ports());
    let body = json!({"model": "claude-sonnet", "max_tokens": 100, "messages": "not a list"}).to_string();
    let verdict = pipeline.on_request_body(&mut stream, body.as_bytes(), true, host.ports());
    assert!(matches!(verdict, BodyVerdict::Respond(ref r) if r.status == 400), "{verdict:?}");
    let _first = send_chat(&pipeline, &host).unwrap();
}

#[test]
fn a_shadow_rule_never_refuses() {
    let host = MemoryHost::default();
    let rules = json!([{"name": "watch", "requests": 1, "per": "minute", "shadow": true}]);
    let pipeline = pipeline(rules, &host);
    for _ in 0..3 {
        let verdict = pipeline.on_request_headers(&mut pipeline.stream(), &head("/api/orders"), host.ports());
        assert!(matches!(verdict, Verdict::Continue(_)), "{verdict:?}");
        assert!(send_chat(&pipeline, &host).is_ok());
    }
    assert_eq!(host.metric("tollgate_ratelimit.rule.watch.shadow_limited"), 5);
}

#[test]
fn a_bad_ratelimit_section_names_its_path() {
    let config = json!({"ratelimit": {"rules": [{"name": "r", "requests": 1, "per": "fortnight"}]}});
    let err = Pipeline::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
    assert!(err.starts_with("ratelimit.rules[0]"), "{err}");
}

/// With `cost_header`, an answer read whole carries what it cost from the price table; a streamed answer,
/// whose head left before its usage was known, does not (the cost metric counts both).
#[test]
fn the_cost_header_prices_an_answer_read_whole() {
    let host = MemoryHost::default();
    let ratelimit = json!({"cost_header": true, "currency": "USD",
                           "prices": {"models": {"claude-sonnet": {"input": 3.0, "output": 15.0}}}});
    let pipeline = pipeline_with(ratelimit, &host);

    let mut stream = send_chat(&pipeline, &host).unwrap();
    let json_head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(pipeline.on_response_headers(&mut stream, &json_head, host.ports()), Verdict::AwaitBody);
    let message = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 200}});
    let BodyVerdict::Continue { head: edits, .. } =
        pipeline.on_response_body(&mut stream, message.to_string().as_bytes(), true, host.ports())
    else {
        panic!("no answer")
    };
    // 1000 × $3 / 1M + 200 × $15 / 1M = $0.006.
    assert!(edits.set.contains(&("x-tollgate-cost".to_string(), "0.006000 USD".to_string())), "{edits:?}");
    assert_eq!(host.metric("tollgate_ratelimit.cost_micros.alice.claude-sonnet"), 6_000);

    let mut stream = pipeline.stream();
    let verdict = pipeline.on_request_headers(&mut stream, &head("/v1/chat/completions"), host.ports());
    assert_eq!(verdict, Verdict::AwaitBody);
    let body =
        json!({"model": "claude-sonnet", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    assert!(matches!(
        pipeline.on_request_body(&mut stream, body.to_string().as_bytes(), true, host.ports()),
        BodyVerdict::Continue { body: Some(_), .. }
    ));
    let sse = ResponseHead::from_pairs([(":status", "200"), ("content-type", "text/event-stream")]);
    let Verdict::Continue(edits) = pipeline.on_response_headers(&mut stream, &sse, host.ports()) else {
        panic!("a stream's head is not held")
    };
    assert!(edits.set.iter().all(|(n, _)| n != "x-tollgate-cost"));
    let events = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":1}}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":200}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    let BodyVerdict::Continue { head: edits, .. } =
        pipeline.on_response_body(&mut stream, events.as_bytes(), true, host.ports())
    else {
        panic!("no stream")
    };
    assert!(edits.set.iter().all(|(n, _)| n != "x-tollgate-cost"), "{edits:?}");
    assert_eq!(host.metric("tollgate_ratelimit.cost_micros.alice.claude-sonnet"), 12_000);
}

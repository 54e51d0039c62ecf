//! The decision trace: each step a request met, in order; the `x-tollgate-trace` header only for trusted
//! callers; refusals counted by reason and consumer.

use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{RequestHead, ResponseHead, Verdict};

use crate::Pipeline;

const ALICE: &str = "tg_test_key_alice";
const BOB: &str = "tg_test_key_bob";

fn pipeline(trace: Value) -> (Pipeline, MemoryHost) {
    use sha2::{Digest, Sha256};
    let key = |id: &str, key: &str| json!({"id": id, "sha256": hex::encode(Sha256::digest(key))});
    let config = json!({
        "auth": {"consumers": [
            {"name": "alice", "group": "ops", "api_keys": [key("a1", ALICE)]},
            {"name": "bob", "api_keys": [key("b1", BOB)]}
        ]},
        "ratelimit": {"rules": [{"name": "per-consumer", "key": ["consumer"], "requests": 1, "per": "minute"}]},
        "trace": trace
    });
    let pipeline = Pipeline::from_json(config.to_string().as_bytes()).unwrap();
    let host = MemoryHost::default();
    pipeline.prepare(host.ports()).unwrap();
    (pipeline, host)
}

fn get(key: Option<&str>) -> RequestHead {
    let mut pairs = vec![(":method", "GET".to_string()), (":path", "/api/orders".to_string())];
    if let Some(key) = key {
        pairs.push(("authorization", format!("Bearer {key}")));
    }
    RequestHead::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())))
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

#[test]
fn a_trusted_caller_gets_the_trace_of_an_admitted_request() {
    let (pipeline, host) = pipeline(json!({"enabled": true, "header_for_groups": ["ops"]}));
    let mut stream = pipeline.stream();
    assert!(matches!(
        pipeline.on_request_headers(&mut stream, &get(Some(ALICE)), host.ports()),
        Verdict::Continue(_)
    ));
    let published = pipeline.take_trace_update(&mut stream);
    assert_eq!(published.as_deref(), Some("auth:allow consumer=alice; ratelimit:allow"));
    let Verdict::Continue(edits) =
        pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports())
    else {
        panic!("expected continue");
    };
    assert_eq!(
        header(&edits.set, "x-tollgate-trace").as_deref(),
        Some("auth:allow consumer=alice; ratelimit:allow")
    );
}

#[test]
fn a_refusal_traces_its_step_and_reason_and_is_counted() {
    let (pipeline, host) = pipeline(json!({"enabled": true, "header_for_consumers": ["alice"]}));
    let mut first = pipeline.stream();
    pipeline.on_request_headers(&mut first, &get(Some(ALICE)), host.ports());
    let mut second = pipeline.stream();
    let Verdict::Respond(reply) = pipeline.on_request_headers(&mut second, &get(Some(ALICE)), host.ports())
    else {
        panic!("the second request is over the limit");
    };
    assert_eq!(reply.status, 429);
    assert_eq!(reply.reason(), Some("rate_limited"));
    let trace = header(&reply.headers, "x-tollgate-trace");
    assert_eq!(trace.as_deref(), Some("auth:allow consumer=alice; ratelimit:deny rate_limited"));
    assert_eq!(host.metric("tollgate_denied.reason.rate_limited.route._.consumer.alice"), 1);

    let mut anonymous = pipeline.stream();
    let Verdict::Respond(reply) = pipeline.on_request_headers(&mut anonymous, &get(None), host.ports())
    else {
        panic!("no key is refused");
    };
    assert_eq!((reply.status, reply.reason()), (401, Some("missing_credentials")));
    assert_eq!(header(&reply.headers, "x-tollgate-trace"), None, "an unknown caller never gets the trace");
    assert_eq!(pipeline.take_trace_update(&mut anonymous).as_deref(), Some("auth:deny missing_credentials"));
    assert_eq!(host.metric("tollgate_denied.reason.missing_credentials.route._.consumer.anonymous"), 1);
}

#[test]
fn untrusted_callers_never_get_the_trace_header() {
    let (pipeline, host) = pipeline(json!({"enabled": true, "header_for_groups": ["ops"]}));
    let mut stream = pipeline.stream();
    pipeline.on_request_headers(&mut stream, &get(Some(BOB)), host.ports());
    assert!(pipeline.take_trace_update(&mut stream).is_some(), "the trace is still recorded for the log");
    let Verdict::Continue(edits) =
        pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports())
    else {
        panic!("expected continue");
    };
    assert_eq!(header(&edits.set, "x-tollgate-trace"), None);
}

#[test]
fn tracing_is_off_by_default_and_a_header_needs_it_on() {
    let (pipeline, host) = pipeline(json!({}));
    let mut stream = pipeline.stream();
    pipeline.on_request_headers(&mut stream, &get(Some(ALICE)), host.ports());
    assert_eq!(pipeline.take_trace_update(&mut stream), None);
    let config = json!({"trace": {"header_for_groups": ["ops"]}});
    let error = Pipeline::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
    assert_eq!(error, "trace.enabled: must be true for header_for_consumers or header_for_groups");
}

#[test]
fn an_answer_that_is_not_a_refusal_is_traced_as_a_reply() {
    use sha2::{Digest, Sha256};
    let config = json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [{"id": "a1", "sha256": hex::encode(Sha256::digest(ALICE))}]}]},
        "ai": {"providers": [{"name": "oai", "kind": "openai", "cluster": "c", "api_key": "sk-secret"}],
               "models": [{"name": "gpt-4o", "provider": "oai"}]},
        "trace": {"enabled": true}
    });
    let pipeline = Pipeline::from_json(config.to_string().as_bytes()).unwrap();
    let host = MemoryHost::default();
    let mut stream = pipeline.stream();
    let head = RequestHead::from_pairs([
        (":method", "GET"),
        (":path", "/v1/models"),
        ("authorization", &format!("Bearer {ALICE}")),
    ]);
    let Verdict::Respond(reply) = pipeline.on_request_headers(&mut stream, &head, host.ports()) else {
        panic!("the gateway lists the models itself");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(
        pipeline.take_trace_update(&mut stream).as_deref(),
        Some("auth:allow consumer=alice; ai:reply 200")
    );
    assert_eq!(reply.reason(), None, "an answer, not a refusal: no reason code, not counted as a denial");
}

//! Prompt endpoints as the chain runs them: auth and limits first, the rendered request sent to the
//! provider by the filter itself, the answer shaped (once more on a schema mismatch), counted per endpoint
//! and version; decorators on plain chat requests; the OpenAPI document.

use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{BodyVerdict, CallOutcome, Callout, LocalReply, OutboundCall, RequestHead, Verdict};

use crate::{Pipeline, Stream};

const KEY: &str = "tg_test_key_prompt";

fn sha(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn config() -> Value {
    json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [{"id": "k1", "sha256": sha(KEY)}]}],
                 "routes": [{"path_prefix": "/.well-known/", "require": "none"}]},
        "ai": {
            "providers": [{"name": "oai", "kind": "openai", "cluster": "openai_cluster", "api_key": "sk-oai-secret"}],
            "models": [{"name": "gpt-4o", "provider": "oai"}]
        },
        "ratelimit": {
            "prices": {"models": {"gpt-4o": {"input": 2.0, "output": 10.0}}},
            "rules": [{"name": "prompt-tokens", "routes": ["/api/"], "tokens": 500, "per": "day"}]
        },
        "prompt": {
            "endpoints": [
                {"path": "/api/translate", "model": "gpt-4o", "max_tokens": 50,
                 "variables": {"text": {"type": "string", "required": true, "max_length": 200},
                               "to": {"type": "enum", "values": ["fr", "de"], "default": "fr"}},
                 "versions": [{"name": "v1", "messages": [
                     {"role": "system", "content": "Translate into {{to}}. Answer with the translation only."},
                     {"role": "user", "content": "{{text}}"}]}]},
                {"path": "/api/sentiment", "model": "gpt-4o", "max_tokens": 20,
                 "variables": {"text": {"type": "string", "required": true}},
                 "output": {"mode": "json", "schema": {"type": "object", "required": ["label"],
                            "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}}}},
                 "versions": [{"name": "v1", "messages": [{"role": "user", "content": "Sentiment of: {{text}}"}]}]}
            ],
            "decorators": [{"path_prefix": "/v1/chat", "prepend": [{"role": "system", "content": "Be brief."}]}]
        }
    })
}

fn pipeline() -> Pipeline {
    Pipeline::from_json(config().to_string().as_bytes()).unwrap()
}

fn head(method: &str, path: &str) -> RequestHead {
    RequestHead::from_pairs([
        (":method", method),
        (":path", path),
        (":authority", "gateway.example"),
        ("authorization", &format!("Bearer {KEY}")),
        ("x-request-id", "req-1"),
    ])
}

/// Head and variables of a request to an endpoint, up to the provider call it makes.
fn call(pipeline: &Pipeline, stream: &mut Stream, host: &MemoryHost, path: &str, vars: Value) -> BodyVerdict {
    assert_eq!(pipeline.on_request_headers(stream, &head("POST", path), host.ports()), Verdict::AwaitBody);
    pipeline.on_request_body(stream, vars.to_string().as_bytes(), true, host.ports())
}

fn http_call(verdict: BodyVerdict) -> OutboundCall {
    match verdict {
        BodyVerdict::Call(Callout::Http(call)) => call,
        other => panic!("expected a provider call, got {other:?}"),
    }
}

fn reply(verdict: BodyVerdict) -> LocalReply {
    match verdict {
        BodyVerdict::Respond(reply) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn completion(text: &str) -> CallOutcome {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40}
    });
    CallOutcome::Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn header<'r>(reply: &'r LocalReply, name: &str) -> Option<&'r str> {
    reply.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn body(reply: &LocalReply) -> Value {
    serde_json::from_slice(&reply.body).unwrap()
}

#[test]
fn an_endpoint_calls_its_provider_and_answers_with_the_result() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let call = http_call(call(&pipeline, &mut stream, &host, "/api/translate", json!({"text": "hello"})));
    assert_eq!((call.cluster.as_str(), call.method.as_str()), ("openai_cluster", "POST"));
    assert_eq!((call.path.as_str(), call.authority.as_str()), ("/v1/chat/completions", "api.openai.com"));
    assert_eq!(call.timeout, std::time::Duration::from_secs(120), "the default provider call timeout");
    assert!(
        call.headers.contains(&("authorization".into(), "Bearer sk-oai-secret".into())),
        "{:?}",
        call.headers
    );
    assert!(!call.headers.iter().any(|(_, v)| v.contains(KEY)), "the client's key never leaves");
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Translate into fr. Answer with the translation only."})
    );
    assert_eq!(sent["messages"][1], json!({"role": "user", "content": "hello"}));
    assert_eq!(sent["max_tokens"], json!(50));

    let answer = reply(pipeline.on_body_call_response(&mut stream, &completion("bonjour"), host.ports()));
    assert_eq!(answer.status, 200);
    let got = body(&answer);
    assert_eq!((got["result"].clone(), got["version"].clone()), (json!("bonjour"), json!("v1")));
    assert_eq!(got["usage"]["total_tokens"], json!(40));
    assert_eq!(header(&answer, "x-tollgate-prompt-version"), Some("v1"));
    assert_eq!(header(&answer, "x-tollgate-provider"), Some("oai"));
    // Envoy sends that reply through the response phases: its body is the client's, untouched.
    assert!(!pipeline.reads_response_body(&stream));
    let passed = pipeline.on_response_body(&mut stream, &answer.body, true, host.ports());
    assert_eq!(passed, BodyVerdict::pass());
    let metric = |event: &str| host.metric(&crate::prompt_metric("post_api_translate", "v1", event));
    assert_eq!(
        (metric("requests"), metric("errors"), metric("input_tokens"), metric("output_tokens")),
        (1, 0, 30, 10)
    );
    // 30 tokens at 2 and 10 at 10 per million: 160 millionths.
    assert_eq!(metric("cost_micros"), 160);
}

#[test]
fn invalid_variables_are_refused_before_any_call() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let answer =
        reply(call(&pipeline, &mut stream, &host, "/api/translate", json!({"to": "es", "extra": 1})));
    assert_eq!((answer.status, answer.reason()), (400, Some("invalid_variables")));
    let fields: Vec<String> = body(&answer)["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields.len(), 3, "{fields:?}");
    for field in ["text", "to", "extra"] {
        assert!(fields.iter().any(|f| f == field), "{field} missing from {fields:?}");
    }
}

#[test]
fn a_json_answer_that_misses_its_schema_is_asked_for_once_more() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let first = http_call(call(&pipeline, &mut stream, &host, "/api/sentiment", json!({"text": "great"})));
    let sent: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(sent["response_format"]["type"], json!("json_schema"));
    let again = http_call(pipeline.on_body_call_response(&mut stream, &completion("not json"), host.ports()));
    assert_eq!(again, first, "the same request goes again");
    let answer = reply(pipeline.on_body_call_response(
        &mut stream,
        &completion(r#"{"label":"positive"}"#),
        host.ports(),
    ));
    assert_eq!(answer.status, 200);
    assert_eq!(body(&answer)["result"], json!({"label": "positive"}));
    let metric = |event: &str| host.metric(&crate::prompt_metric("post_api_sentiment", "v1", event));
    assert_eq!((metric("requests"), metric("retries"), metric("input_tokens")), (1, 1, 60));

    let mut stream = pipeline.stream();
    http_call(call(&pipeline, &mut stream, &host, "/api/sentiment", json!({"text": "meh"})));
    http_call(pipeline.on_body_call_response(&mut stream, &completion(r#"{"label":"meh"}"#), host.ports()));
    let answer = reply(pipeline.on_body_call_response(&mut stream, &completion("still no"), host.ports()));
    assert_eq!((answer.status, answer.reason()), (502, Some("output_schema_mismatch")));
    assert_eq!((metric("requests"), metric("errors"), metric("retries")), (2, 1, 2));
}

#[test]
fn provider_failures_reach_the_client_as_errors() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    http_call(call(&pipeline, &mut stream, &host, "/api/translate", json!({"text": "hi"})));
    let failed = CallOutcome::Response {
        status: 500,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}"#.to_vec(),
    };
    let answer = reply(pipeline.on_body_call_response(&mut stream, &failed, host.ports()));
    assert_eq!((answer.status, answer.reason()), (502, Some("provider_error")));
    assert_eq!(body(&answer)["error"]["code"], json!("overloaded"));

    let mut stream = pipeline.stream();
    http_call(call(&pipeline, &mut stream, &host, "/api/translate", json!({"text": "hi"})));
    let silent = CallOutcome::Failed { reason: "timeout".into() };
    let answer = reply(pipeline.on_body_call_response(&mut stream, &silent, host.ports()));
    assert_eq!((answer.status, answer.reason()), (502, Some("bad_upstream_response")));
}

#[test]
fn limits_judge_the_rendered_request_before_the_provider_is_called() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let long = "word ".repeat(39);
    let mut config = config();
    config["prompt"]["endpoints"][0]["max_tokens"] = json!(490);
    let pipeline_big = Pipeline::from_json(config.to_string().as_bytes()).unwrap();
    let answer = reply(call(&pipeline_big, &mut stream, &host, "/api/translate", json!({"text": long})));
    assert_eq!((answer.status, answer.reason()), (429, Some("token_limit")));
    // The same request with the configured 50 tokens fits.
    let mut stream = pipeline.stream();
    http_call(call(&pipeline, &mut stream, &host, "/api/translate", json!({"text": long})));
}

#[test]
fn decorators_apply_to_plain_chat_requests_before_translation() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let head = head("POST", "/v1/chat/completions");
    assert_eq!(pipeline.on_request_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let BodyVerdict::Continue { body: Some(upstream), .. } =
        pipeline.on_request_body(&mut stream, chat.as_bytes(), true, host.ports())
    else {
        panic!("expected the chat request to go upstream")
    };
    let sent: Value = serde_json::from_slice(&upstream).unwrap();
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(sent["messages"][1], json!({"role": "user", "content": "hi"}));
}

#[test]
fn the_openapi_document_and_wrong_methods_are_answered_at_the_head() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let doc = RequestHead::from_pairs([(":method", "GET"), (":path", "/.well-known/tollgate/openapi.json")]);
    let Verdict::Respond(answer) = pipeline.on_request_headers(&mut stream, &doc, host.ports()) else {
        panic!("expected the document")
    };
    let document = body(&answer);
    assert_eq!(document["openapi"], json!("3.1.0"));
    assert!(document["paths"]["/api/translate"]["post"].is_object(), "{document}");

    let mut stream = pipeline.stream();
    let Verdict::Respond(wrong) =
        pipeline.on_request_headers(&mut stream, &head("GET", "/api/translate"), host.ports())
    else {
        panic!("expected a 405")
    };
    assert_eq!((wrong.status, wrong.reason()), (405, Some("prompt_method_not_allowed")));
}

#[test]
fn an_endpoint_sets_how_long_its_provider_call_may_take() {
    let mut config = config();
    config["prompt"]["endpoints"][0]["timeout_ms"] = json!(5000);
    let pipeline = Pipeline::from_json(config.to_string().as_bytes()).unwrap();
    let (host, mut stream) = (MemoryHost::default(), pipeline.stream());
    let call = http_call(call(&pipeline, &mut stream, &host, "/api/translate", json!({"text": "hi"})));
    assert_eq!(call.timeout, std::time::Duration::from_millis(5000));
    config["prompt"]["endpoints"][0]["timeout_ms"] = json!(0);
    let error = Pipeline::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.starts_with("prompt.endpoints[0].timeout_ms: must be between 1 and 600000"), "{error}");
}

#[test]
fn endpoints_need_a_model_the_ai_section_routes() {
    let mut config = config();
    config["prompt"]["endpoints"][1]["model"] = json!("nobody-serves-this");
    let error = Pipeline::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.starts_with("prompt.endpoints[1].model: no ai.models entry"), "{error}");
    config.as_object_mut().unwrap().remove("ai");
    let error = Pipeline::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.starts_with("prompt: prompt endpoints and decorators need the ai section"), "{error}");
}

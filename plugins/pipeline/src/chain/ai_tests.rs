//! The AI gateway as the chain runs it: after auth (whose model scopes it honours), translating requests to
//! a provider and answers back, streams included, and never forwarding the client's credential.

use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{BodyVerdict, Headers, RequestHead, ResponseHead, Verdict};

use crate::Pipeline;

const ALICE_KEY: &str = "tg_test_key_alice";
const BOB_KEY: &str = "tg_test_key_bob";

fn sha(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn pipeline() -> Pipeline {
    let config = json!({
        "response_headers": {"set": {"x-served-by": "tollgate"}},
        "auth": {
            "consumers": [
                {"name": "alice", "api_keys": [{"id": "k1", "sha256": sha(ALICE_KEY)}]},
                {"name": "bob", "api_keys": [{"id": "k2", "sha256": sha(BOB_KEY), "models": ["gpt-4o*"]}]}
            ]
        },
        "ai": {
            "providers": [
                {"name": "claude", "kind": "anthropic", "cluster": "anthropic_cluster", "api_key": "sk-ant-secret",
                 "api_version": "2023-06-01"},
                {"name": "oai", "kind": "openai", "cluster": "openai_cluster", "api_key": "sk-oai-secret"}
            ],
            "models": [
                {"name": "claude-sonnet", "provider": "claude", "model": "claude-sonnet-4-5"},
                {"name": "gpt-4o-mini", "provider": "oai"},
                {"name": "gpt-*", "provider": "oai"}
            ]
        }
    });
    Pipeline::from_json(config.to_string().as_bytes()).unwrap()
}

fn request(method: &str, path: &str, key: &str) -> RequestHead {
    RequestHead::from_pairs([
        (":method", method),
        (":path", path),
        (":authority", "gateway.example"),
        ("authorization", &format!("Bearer {key}")),
        ("x-tollgate-cluster", "client-choice"),
        ("x-request-id", "r1"),
    ])
}

fn chat(model: &str, stream: bool) -> Vec<u8> {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello!"}]})
        .to_string()
        .into_bytes()
}

/// Head and body of a request through the chain; the upstream headers and body.
fn forward(
    pipeline: &Pipeline,
    stream: &mut crate::Stream,
    host: &MemoryHost,
    body: &[u8],
) -> (Headers, Value) {
    let head = request("POST", "/v1/chat/completions", ALICE_KEY);
    assert_eq!(pipeline.on_request_headers(stream, &head, host.ports()), Verdict::AwaitBody);
    assert!(pipeline.reads_request_body(stream));
    let BodyVerdict::Continue { head: edits, body: Some(upstream) } =
        pipeline.on_request_body(stream, body, true, host.ports())
    else {
        panic!("expected the request to go upstream")
    };
    let mut headers = head.headers.clone();
    edits.apply_to(&mut headers);
    (headers, serde_json::from_slice(&upstream).unwrap())
}

fn reply(verdict: BodyVerdict) -> (u16, Value) {
    let BodyVerdict::Respond(reply) = verdict else { panic!("expected a reply: {verdict:?}") };
    (reply.status, serde_json::from_slice(&reply.body).unwrap())
}

#[test]
fn a_chat_goes_to_anthropic_with_the_providers_key_and_comes_back_as_openai() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let (headers, body) = forward(&pipeline, &mut stream, &host, &chat("claude-sonnet", false));
    assert_eq!(headers.get(":path"), Some("/v1/messages"));
    assert_eq!(headers.get(":authority"), Some("api.anthropic.com"));
    assert_eq!(headers.get_all("x-tollgate-cluster").collect::<Vec<_>>(), ["anthropic_cluster"]);
    assert_eq!(headers.get("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(headers.get("authorization"), None, "the client's credential is never forwarded");
    assert_eq!(headers.get("x-tollgate-consumer"), Some("alice"));
    assert_eq!(body["model"], "claude-sonnet-4-5");

    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(pipeline.on_response_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    assert!(pipeline.reads_response_body(&stream));
    let answer = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 3}
    });
    assert_eq!(pipeline.on_response_body(&mut stream, b"{", false, host.ports()), BodyVerdict::Buffer);
    let BodyVerdict::Continue { head: edits, body: Some(out) } =
        pipeline.on_response_body(&mut stream, answer.to_string().as_bytes(), true, host.ports())
    else {
        panic!("expected the translated answer")
    };
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["choices"][0]["message"]["content"], "Hi!");
    assert!(edits.set.contains(&("x-served-by".to_string(), "tollgate".to_string())));
    assert!(edits.set.contains(&("x-tollgate-provider".to_string(), "claude".to_string())));
    let usage = pipeline.usage(&stream).unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (9, 3));
    assert_eq!(host.metric("tollgate_ai_input_tokens.provider.claude.model.claude-sonnet.consumer.alice"), 9);
}

#[test]
fn an_anthropic_stream_is_translated_chunk_by_chunk() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    forward(&pipeline, &mut stream, &host, &chat("claude-sonnet", true));
    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "text/event-stream")]);
    let Verdict::Continue(edits) = pipeline.on_response_headers(&mut stream, &head, host.ports()) else {
        panic!("a stream is not held")
    };
    assert!(edits.remove.contains(&"content-length".to_string()));
    let upstream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"type\":\"message\",",
        "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    let (first, second) = upstream.as_bytes().split_at(200);
    let mut client = Vec::new();
    for (chunk, end) in [(first, false), (second, true)] {
        let BodyVerdict::Continue { body: Some(out), .. } =
            pipeline.on_response_body(&mut stream, chunk, end, host.ports())
        else {
            panic!("each chunk is replaced by its translation")
        };
        client.extend(out);
    }
    let text = String::from_utf8(client).unwrap();
    assert!(text.contains("\"content\":\"Hi\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(pipeline.usage(&stream).map(|u| u.output_tokens), Some(2));
}

#[test]
fn models_are_listed_as_the_key_allows() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let ids = |key: &str| {
        let verdict = pipeline.on_request_headers(
            &mut pipeline.stream(),
            &request("GET", "/v1/models", key),
            host.ports(),
        );
        let Verdict::Respond(reply) = verdict else { panic!("expected the list: {verdict:?}") };
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(ALICE_KEY), ["claude-sonnet", "gpt-4o-mini"]);
    assert_eq!(ids(BOB_KEY), ["gpt-4o-mini"]);
}

#[test]
fn a_model_scoped_key_is_refused_by_auth_before_any_translation() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let head = request("POST", "/v1/chat/completions", BOB_KEY);
    assert_eq!(pipeline.on_request_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    let (status, body) =
        reply(pipeline.on_request_body(&mut stream, &chat("claude-sonnet", false), true, host.ports()));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("key_scope_model")));
    assert_eq!(host.metric("tollgate_ai_errors.provider.none.model.none.consumer.bob"), 0);
}

#[test]
fn bad_requests_are_openai_errors() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let run = |body: &[u8]| {
        let mut stream = pipeline.stream();
        let head = request("POST", "/v1/chat/completions", ALICE_KEY);
        pipeline.on_request_headers(&mut stream, &head, host.ports());
        reply(pipeline.on_request_body(&mut stream, body, true, host.ports()))
    };
    let (status, body) = run(&chat("llama-3", false));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")));
    let (status, body) = run(br#"{"model":"claude-sonnet","messages":[{"role":"wizard","content":"x"}]}"#);
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("messages[0].role")));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("messages[0].role: unknown variant"));
}

#[test]
fn other_routes_pass_but_never_with_the_clients_cluster_header() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let head = request("GET", "/healthz", ALICE_KEY);
    let Verdict::Continue(edits) = pipeline.on_request_headers(&mut stream, &head, host.ports()) else {
        panic!("expected the request to pass")
    };
    let mut headers = head.headers.clone();
    edits.apply_to(&mut headers);
    assert_eq!(headers.get("x-tollgate-cluster"), None);
    assert!(!pipeline.reads_request_body(&stream));
    assert!(!pipeline.reads_response_body(&stream));
    assert_eq!(pipeline.usage(&stream), None);
}

#[test]
fn ai_config_errors_name_their_path() {
    let err = Pipeline::from_json(
        br#"{"ai":{"providers":[{"name":"a","kind":"azure","cluster":"c"}],"models":[]}}"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "ai.providers[0].base_url: is required for this kind of provider");
    let err = Pipeline::from_json(br#"{"ai":{"providers":[],"models":[],"limit":{}}}"#).unwrap_err();
    assert!(err.to_string().starts_with("ai.limit: unknown field"), "{err}");
}

fn messages(model: &str) -> Vec<u8> {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello!"}]})
        .to_string()
        .into_bytes()
}

/// An Anthropic client (`/v1/messages`) is refused in Anthropic's error shape by every step: auth (no key,
/// a key scoped to other models), the gateway (an unknown model), and keeps the reason header.
#[test]
fn anthropic_clients_are_refused_in_anthropics_shape_at_every_step() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let head = RequestHead::from_pairs([(":method", "POST"), (":path", "/v1/messages")]);
    let Verdict::Respond(refusal) = pipeline.on_request_headers(&mut pipeline.stream(), &head, host.ports())
    else {
        panic!("a request without a key went on")
    };
    assert_eq!(refusal.status, 401);
    assert_eq!(refusal.reason(), Some("missing_credentials"));
    let body: Value = serde_json::from_slice(&refusal.body).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));

    for (key, model, status, kind) in
        [(BOB_KEY, "claude-sonnet", 403, "permission_error"), (ALICE_KEY, "claude-9", 404, "not_found_error")]
    {
        let mut stream = pipeline.stream();
        let head = request("POST", "/v1/messages", key);
        assert_eq!(pipeline.on_request_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
        let (got, body) = reply(pipeline.on_request_body(&mut stream, &messages(model), true, host.ports()));
        assert_eq!(
            (got, body["type"].as_str(), body["error"]["type"].as_str()),
            (status, Some("error"), Some(kind))
        );
    }
    // The OpenAI route keeps OpenAI's shape.
    let mut stream = pipeline.stream();
    let head = request("POST", "/v1/chat/completions", ALICE_KEY);
    assert_eq!(pipeline.on_request_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    let (_, body) =
        reply(pipeline.on_request_body(&mut stream, &chat("claude-9", false), true, host.ports()));
    assert_eq!(body["error"]["code"], "model_not_found");
}

/// A Messages request to an OpenAI model goes as a chat completion with the provider's key, and its answer
/// comes back as a Messages answer; count_tokens for it is answered by the gateway.
#[test]
fn an_anthropic_client_reaches_an_openai_model_and_counts_tokens_locally() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let head = request("POST", "/v1/messages", ALICE_KEY);
    assert_eq!(pipeline.on_request_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    let BodyVerdict::Continue { head: edits, body: Some(upstream) } =
        pipeline.on_request_body(&mut stream, &messages("gpt-4o"), true, host.ports())
    else {
        panic!("expected the request to go upstream")
    };
    let mut headers = head.headers.clone();
    edits.apply_to(&mut headers);
    assert_eq!(headers.get(":path"), Some("/v1/chat/completions"));
    assert_eq!(headers.get("authorization"), Some("Bearer sk-oai-secret"));
    let upstream: Value = serde_json::from_slice(&upstream).unwrap();
    assert_eq!(upstream["messages"], json!([{"role": "user", "content": "Hello!"}]));
    assert_eq!(upstream["max_tokens"], 64);

    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(pipeline.on_response_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    let answer = json!({"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
    let BodyVerdict::Continue { body: Some(out), .. } =
        pipeline.on_response_body(&mut stream, answer.to_string().as_bytes(), true, host.ports())
    else {
        panic!("expected the translated answer")
    };
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["type"], "message");
    assert_eq!(out["content"], json!([{"type": "text", "text": "Hi!"}]));
    assert_eq!(out["usage"], json!({"input_tokens": 5, "output_tokens": 2}));

    let mut stream = pipeline.stream();
    let head = request("POST", "/v1/messages/count_tokens", ALICE_KEY);
    assert_eq!(pipeline.on_request_headers(&mut stream, &head, host.ports()), Verdict::AwaitBody);
    let count = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "12345678"}]});
    let BodyVerdict::Respond(answer) =
        pipeline.on_request_body(&mut stream, count.to_string().as_bytes(), true, host.ports())
    else {
        panic!("count_tokens went upstream")
    };
    assert_eq!(answer.status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&answer.body).unwrap(), json!({"input_tokens": 2}));
    assert!(answer.headers.contains(&("x-tollgate-estimated".to_string(), "true".to_string())));
    assert_eq!(answer.reason(), None, "an answer, not a refusal");
}

use serde_json::{json, Value};

use super::*;
use crate::adapter::ChunkSink;
use crate::sse::SseEvent;

fn adapter() -> MistralAdapter {
    MistralAdapter::new(ProviderSettings {
        name: "mistral".into(),
        base_path: "/v1".into(),
        api_key: Some("m-key".into()),
        ..ProviderSettings::default()
    })
}

fn target() -> Target<'static> {
    Target { upstream_model: "mistral-large-latest", client_model: "large", created: 1, request_id: "r" }
}

fn chat(request: Value) -> (UpstreamRequest, Value) {
    let req: ChatRequest = serde_json::from_value(request).unwrap();
    let up = adapter().chat_request(&req, &target()).unwrap();
    let body = serde_json::from_slice(&up.body).unwrap();
    (up, body)
}

#[test]
fn renames_fields_mistral_spells_differently() {
    let (up, body) = chat(json!({"model": "large", "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 10, "seed": 7, "tool_choice": "required", "presence_penalty": 0.1,
        "parallel_tool_calls": false}));
    assert_eq!(up.path, "/v1/chat/completions");
    assert!(up.headers.contains(&("authorization".to_string(), "Bearer m-key".to_string())));
    assert_eq!(
        body,
        json!({"model": "mistral-large-latest", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10, "random_seed": 7, "tool_choice": "any", "presence_penalty": 0.1,
            "parallel_tool_calls": false})
    );
    assert!(up.dropped.is_empty());
}

#[test]
fn fields_mistral_does_not_know_are_dropped_and_named() {
    let (up, body) = chat(json!({"model": "large", "messages": [],
        "user": "u1", "logprobs": true, "top_logprobs": 2, "logit_bias": {"1": 2}, "service_tier": "auto",
        "store": true, "metadata": {"a": "b"}, "stream": true, "stream_options": {"include_usage": true}}));
    assert_eq!(
        up.dropped,
        ["logit_bias", "logprobs", "metadata", "service_tier", "store", "top_logprobs", "user"]
    );
    assert_eq!(body, json!({"model": "mistral-large-latest", "messages": [], "stream": true}));
}

#[test]
fn tool_choice_other_than_required_is_kept() {
    let (_, body) = chat(json!({"model": "m", "messages": [], "tool_choice": "auto"}));
    assert_eq!(body["tool_choice"], "auto");
    let named = json!({"type": "function", "function": {"name": "f"}});
    let (_, body) = chat(json!({"model": "m", "messages": [], "tool_choice": named.clone()}));
    assert_eq!(body["tool_choice"], named);
}

#[test]
fn messages_are_fitted_to_mistral_schema() {
    let (up, body) = chat(json!({"model": "m", "messages": [
        {"role": "developer", "content": "rules"},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
        {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
            {"id": "call_Abc123_long", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_Abc123_long", "content": "42"},
        {"role": "function", "name": "g", "content": "old"}
    ]}));
    assert_eq!(up.dropped, ["messages[1].name", "messages[1].content[1]", "messages[2].refusal"]);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0], json!({"role": "system", "content": "rules"}));
    assert_eq!(
        messages[1]["content"],
        json!([{"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}])
    );
    let call_id = messages[2]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(call_id.len(), 9);
    assert!(call_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(messages[3]["tool_call_id"], call_id);
    assert_eq!(messages[4], json!({"role": "tool", "name": "g", "content": "old"}));
}

#[test]
fn embeddings_use_output_dimension_and_drop_user() {
    let req: EmbeddingsRequest = serde_json::from_value(
        json!({"model": "embed", "input": ["a"], "dimensions": 256, "encoding_format": "float", "user": "u"}),
    )
    .unwrap();
    let up = adapter().embeddings_request(&req, &target()).unwrap();
    assert_eq!(up.path, "/v1/embeddings");
    assert_eq!(up.dropped, ["user"]);
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({"model": "mistral-large-latest", "input": ["a"], "output_dimension": 256, "encoding_format": "float"})
    );
}

#[test]
fn flat_errors_are_read() {
    let body = br#"{"object":"error","message":"Tool call id was abc but must be a-z, A-Z, 0-9, with a length of 9.","type":"invalid_request_error","param":null,"code":"3280"}"#;
    let err = adapter().error_response(400, body);
    assert_eq!((err.status(), err.kind(), err.code()), (400, "invalid_request_error", Some("3280")));
    assert!(err.to_string().starts_with("Tool call id was abc"));
}

#[test]
fn validation_details_are_read() {
    let body = br#"{"detail":[{"type":"extra_forbidden","loc":["body","foo"],"msg":"Extra inputs are not permitted","input":1}]}"#;
    let err = adapter().error_response(422, body);
    assert_eq!((err.status(), err.kind()), (422, "invalid_request_error"));
    assert_eq!(err.to_string(), "body.foo: Extra inputs are not permitted");
    let err = adapter().error_response(401, br#"{"detail":"Unauthorized"}"#);
    assert_eq!((err.status(), err.to_string().as_str()), (401, "Unauthorized"));
}

#[test]
fn structured_messages_become_text() {
    let body = br#"{"object":"error","message":{"detail":[{"msg":"bad"}]},"type":"invalid_request_message_order","code":"3230"}"#;
    let err = adapter().error_response(400, body);
    assert_eq!(err.to_string(), r#"{"detail":[{"msg":"bad"}]}"#);
    assert_eq!(adapter().error_response(500, b"upstream connect error").status(), 502);
}

#[test]
fn usage_on_the_last_choice_chunk_is_recorded_and_removed() {
    let mut stream = adapter().stream_translator(&target());
    let mut sink = ChunkSink::new(&target());
    let last = r#"{"id":"a1","object":"chat.completion.chunk","created":9,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"total_tokens":8,"completion_tokens":3}}"#;
    stream.on_event(&SseEvent { event: None, data: last.into() }, &mut sink).unwrap();
    stream.on_event(&SseEvent { event: None, data: "[DONE]".into() }, &mut sink).unwrap();
    stream.finish(&mut sink).unwrap();
    assert_eq!((stream.usage().input_tokens, stream.usage().output_tokens), (5, 3));
    let text = String::from_utf8(sink.take()).unwrap();
    let data: Value = serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap();
    assert!(data.get("usage").is_none());
    assert_eq!(data["choices"][0]["finish_reason"], "stop");
}

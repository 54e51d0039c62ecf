use base64::Engine;
use serde_json::{json, Value};

use super::conformance::{adapter, target};
use super::response::finish_reason;
use crate::adapter::{Adapter, EmbeddingsRequest};
use crate::chat::FinishReason;
use crate::{AiError, Usage};

fn complete(body: Value) -> Result<(Value, Usage), AiError> {
    let translated = adapter().chat_response(body.to_string().as_bytes(), &target())?;
    Ok((serde_json::from_slice(&translated.body).unwrap(), translated.usage))
}

fn bad_response(err: AiError) -> String {
    assert_eq!(err.status(), 502);
    match err {
        AiError::BadUpstreamResponse(message) => message,
        other => panic!("expected BadUpstreamResponse, got {other:?}"),
    }
}

#[test]
fn malformed_bodies_are_bad_upstream_responses() {
    for body in [&b"{not json"[..], b"", b"[]", b"\"text\"", b"<html>oops</html>"] {
        let err = adapter().chat_response(body, &target()).unwrap_err();
        bad_response(err);
    }
}

#[test]
fn wrongly_typed_fields_name_their_path() {
    let err = complete(json!({ "candidates": [{ "content": { "parts": [{ "text": 5 }] } }] })).unwrap_err();
    let message = bad_response(err);
    assert!(message.contains("candidates[0].content.parts[0].text"), "{message}");
    let err = complete(json!({ "candidates": [], "usageMetadata": { "promptTokenCount": -1 } })).unwrap_err();
    bad_response(err);
}

#[test]
fn no_candidates_without_a_block_is_a_bad_response() {
    bad_response(complete(json!({ "usageMetadata": { "promptTokenCount": 3 } })).unwrap_err());
    bad_response(complete(json!({ "candidates": null })).unwrap_err());
}

#[test]
fn missing_content_or_parts_is_an_empty_answer() {
    let (body, _) = complete(json!({ "candidates": [
        { "finishReason": "SAFETY" },
        { "content": { "role": "model" }, "index": 1 },
        { "content": { "role": "model", "parts": null }, "index": 2, "finishReason": "OTHER" }
    ] }))
    .unwrap();
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices[0]["message"], json!({ "role": "assistant", "content": "" }));
    assert_eq!(choices[0]["finish_reason"], "content_filter");
    assert_eq!(choices[1]["finish_reason"], Value::Null, "no finishReason yet");
    assert_eq!(choices[2]["index"], 2);
    assert_eq!(choices[2]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 0, "no usageMetadata counts as zero");
}

#[test]
fn finish_reasons() {
    use FinishReason::*;
    let cases = [
        ("STOP", false, Stop),
        ("STOP", true, ToolCalls),
        ("MAX_TOKENS", true, Length),
        ("SAFETY", true, ContentFilter),
        ("RECITATION", false, ContentFilter),
        ("BLOCKLIST", false, ContentFilter),
        ("PROHIBITED_CONTENT", false, ContentFilter),
        ("SPII", false, ContentFilter),
        ("MALFORMED_FUNCTION_CALL", false, Stop),
        ("SOMETHING_NEW", false, Stop),
    ];
    for (gemini, called, openai) in cases {
        assert_eq!(finish_reason(gemini, called), openai, "{gemini}");
    }
}

#[test]
fn text_and_calls_together_with_provider_ids_and_missing_args() {
    let (body, _) = complete(json!({ "responseId": "r1", "candidates": [{ "content": { "parts": [
        { "text": "Checking " }, { "text": "now." },
        { "functionCall": { "name": "a", "args": { "x": [1, 2] }, "id": "given-id" } },
        { "functionCall": { "name": "b" } },
        { "executableCode": { "language": "PYTHON", "code": "print(1)" } }
    ] }, "finishReason": "STOP" }] }))
    .unwrap();
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "Checking now.");
    assert_eq!(message["tool_calls"][0]["id"], "given-id");
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{\"x\":[1,2]}");
    assert_eq!(message["tool_calls"][1]["id"], "call_r1_0");
    assert_eq!(message["tool_calls"][1]["function"]["arguments"], "{}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["id"], "chatcmpl-r1");
    assert_eq!(body["model"], "gemini-2.5-flash", "no modelVersion: the upstream model");
}

#[test]
fn call_ids_count_across_candidates() {
    let call = json!({ "content": { "parts": [{ "functionCall": { "name": "f", "args": {} } }] }, "finishReason": "STOP" });
    let (body, _) = complete(json!({ "candidates": [call.clone(), call] })).unwrap();
    assert_eq!(body["choices"][0]["message"]["tool_calls"][0]["id"], "call_test_0");
    assert_eq!(body["choices"][1]["message"]["tool_calls"][0]["id"], "call_test_1");
    assert_eq!(body["choices"][1]["index"], 1);
}

#[test]
fn tool_use_prompt_tokens_count_as_input() {
    let (_, usage) = complete(json!({ "candidates": [{ "content": { "parts": [{ "text": "x" }] } }],
        "usageMetadata": { "promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 2 } }))
    .unwrap();
    assert_eq!(
        usage,
        Usage { input_tokens: 15, output_tokens: 2, cached_input_tokens: 0, reasoning_tokens: 0 }
    );
}

#[test]
fn an_error_object_in_a_2xx_body_is_the_providers_error() {
    let err =
        complete(json!({ "error": { "code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED" } }))
            .unwrap_err();
    assert_eq!(err.status(), 429);
    assert_eq!(err.code(), Some("resource_exhausted"));
    let err = complete(json!({ "error": { "message": "boom" } })).unwrap_err();
    assert_eq!(err.status(), 502);
}

#[test]
fn error_bodies() {
    let adapter = adapter();
    let wrapped =
        json!([{ "error": { "code": 404, "message": "models/x is not found", "status": "NOT_FOUND" } }]);
    let err = adapter.error_response(404, wrapped.to_string().as_bytes());
    assert_eq!((err.status(), err.kind(), err.code()), (404, "invalid_request_error", Some("not_found")));
    assert_eq!(err.to_string(), "models/x is not found");

    let err =
        adapter.error_response(403, br#"{"error":{"code":403,"message":"","status":"PERMISSION_DENIED"}}"#);
    assert_eq!((err.status(), err.kind()), (403, "permission_error"));
    assert!(err.to_string().contains("status 403"), "an empty message falls back: {err}");

    let err = adapter.error_response(500, b"");
    assert_eq!((err.status(), err.kind(), err.code()), (502, "upstream_error", None));
    assert_eq!(err.to_string(), "the upstream provider answered with status 500");

    let err = adapter.error_response(401, br#"{"unexpected": true}"#);
    assert_eq!((err.status(), err.kind()), (401, "authentication_error"));
}

fn embeddings(request: Value) -> Result<Value, AiError> {
    let req: EmbeddingsRequest = serde_json::from_value(request).unwrap();
    let upstream = adapter().embeddings_request(&req, &target())?;
    assert!(upstream.dropped.iter().all(|d| d != "encoding_format"));
    Ok(
        json!({ "body": serde_json::from_slice::<Value>(&upstream.body).unwrap(), "dropped": upstream.dropped }),
    )
}

#[test]
fn embeddings_inputs_gemini_cannot_take() {
    for input in [json!([1, 2, 3]), json!([[1, 2]]), json!([]), json!(7), json!(["ok", 1])] {
        let err = embeddings(json!({ "model": "e", "input": input })).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(matches!(err, AiError::InvalidRequest { param: Some(ref p), .. } if p == "input"), "{input}");
    }
    let err = embeddings(json!({ "model": "e", "input": "x", "encoding_format": "int8" })).unwrap_err();
    assert!(matches!(err, AiError::InvalidRequest { param: Some(ref p), .. } if p == "encoding_format"));
}

#[test]
fn embeddings_drop_user_and_extras() {
    let out = embeddings(json!({ "model": "e", "input": "x", "user": "u", "task_type": "QUERY" })).unwrap();
    assert_eq!(out["dropped"], json!(["user", "task_type"]));
    assert_eq!(out["body"]["requests"][0]["model"], "models/gemini-2.5-flash");
}

#[test]
fn embeddings_responses() {
    let adapter = adapter();
    let bad = adapter.embeddings_response(br#"{"embeddings":[{"vals":[1.0]}]}"#, &target()).unwrap_err();
    bad_response(bad);
    bad_response(adapter.embeddings_response(b"{}", &target()).unwrap_err());
    bad_response(adapter.embeddings_response(b"not json", &target()).unwrap_err());

    let body = br#"{"embeddings":[{"values":[0.25,-0.5]}]}"#;
    let plain = adapter.embeddings_response(body, &target()).unwrap();
    let plain: Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(plain["data"][0]["embedding"], json!([0.25, -0.5]));
    assert_eq!(plain["model"], "gemini-flash", "the client's model name");

    let req: EmbeddingsRequest =
        serde_json::from_value(json!({ "model": "e", "input": "x", "encoding_format": "base64" })).unwrap();
    let encoded = adapter.embeddings_response_for(&req, body, &target()).unwrap();
    let encoded: Value = serde_json::from_slice(&encoded.body).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(floats, [0.25, -0.5]);
}

use serde_json::{json, Value};

use super::testing::{adapter, target};
use super::{finish_reason, JSON_TOOL};
use crate::adapter::Adapter;
use crate::chat::FinishReason;
use crate::{AiError, Usage};

fn respond(message: Value) -> (Value, Usage) {
    let translated = adapter().chat_response(message.to_string().as_bytes(), &target()).unwrap();
    (serde_json::from_slice(&translated.body).unwrap(), translated.usage)
}

fn message(content: Value, stop_reason: &str) -> Value {
    json!({ "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": content,
        "stop_reason": stop_reason, "usage": { "input_tokens": 3, "output_tokens": 4 } })
}

#[test]
fn text_blocks_join_and_envelope() {
    let (body, usage) = respond(message(
        json!([{ "type": "text", "text": "Hel" }, { "type": "text", "text": "lo" }]),
        "end_turn",
    ));
    assert_eq!(body["id"], "msg_1");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["created"], 1700000000);
    assert_eq!(body["model"], "claude-x");
    assert_eq!(body["choices"][0]["message"], json!({ "role": "assistant", "content": "Hello" }));
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(usage, Usage { input_tokens: 3, output_tokens: 4, ..Usage::default() });
    assert_eq!(body["usage"]["total_tokens"], 7);
}

#[test]
fn model_falls_back_to_upstream_model() {
    let mut m = message(json!([]), "end_turn");
    m.as_object_mut().unwrap().remove("model");
    assert_eq!(respond(m).0["model"], "claude-sonnet-4-5");
}

#[test]
fn thinking_and_unknown_blocks_skipped() {
    let (body, _) = respond(message(
        json!([
            { "type": "thinking", "thinking": "hmm", "signature": "sig" },
            { "type": "redacted_thinking", "data": "xx" },
            { "type": "text", "text": "42" },
            { "type": "some_future_block", "x": 1 },
        ]),
        "end_turn",
    ));
    assert_eq!(body["choices"][0]["message"]["content"], "42");
}

#[test]
fn tool_use_only_has_null_content() {
    let (body, _) = respond(message(
        json!([
            { "type": "tool_use", "id": "toolu_1", "name": "f", "input": { "a": 1 } },
            { "type": "tool_use", "id": "toolu_2", "name": "g" },
        ]),
        "tool_use",
    ));
    let msg = &body["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(
        msg["tool_calls"],
        json!([
            { "id": "toolu_1", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } },
            { "id": "toolu_2", "type": "function", "function": { "name": "g", "arguments": "{}" } },
        ])
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn json_answer_tool_becomes_content() {
    let (body, _) = respond(message(
        json!([{ "type": "tool_use", "id": "t", "name": JSON_TOOL, "input": { "ok": true } }]),
        "tool_use",
    ));
    assert_eq!(body["choices"][0]["message"], json!({ "role": "assistant", "content": "{\"ok\":true}" }));
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[test]
fn json_answer_beside_a_client_tool_call_is_tool_calls() {
    let (body, _) = respond(message(
        json!([
            { "type": "tool_use", "id": "t1", "name": "f", "input": {} },
            { "type": "tool_use", "id": "t2", "name": JSON_TOOL, "input": [] },
        ]),
        "tool_use",
    ));
    assert_eq!(body["choices"][0]["message"]["content"], "[]");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn empty_content_is_empty_string() {
    let (body, _) = respond(message(json!([]), "end_turn"));
    assert_eq!(body["choices"][0]["message"]["content"], "");
}

#[test]
fn stop_reasons() {
    let cases = [
        (Some("end_turn"), false, Some(FinishReason::Stop)),
        (Some("stop_sequence"), false, Some(FinishReason::Stop)),
        (Some("pause_turn"), false, Some(FinishReason::Stop)),
        (Some("max_tokens"), false, Some(FinishReason::Length)),
        (Some("model_context_window_exceeded"), false, Some(FinishReason::Length)),
        (Some("tool_use"), true, Some(FinishReason::ToolCalls)),
        (Some("tool_use"), false, Some(FinishReason::Stop)),
        (Some("refusal"), false, Some(FinishReason::ContentFilter)),
        (Some("brand_new_reason"), false, Some(FinishReason::Stop)),
        (None, false, None),
    ];
    for (reason, tools, expected) in cases {
        assert_eq!(finish_reason(reason, tools), expected, "{reason:?}");
    }
    let (body, _) = respond(message(json!([]), "refusal"));
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn null_stop_reason_is_null_finish() {
    let mut m = message(json!([]), "end_turn");
    m["stop_reason"] = Value::Null;
    assert_eq!(respond(m).0["choices"][0]["finish_reason"], Value::Null);
}

#[test]
fn cache_tokens_count_as_prompt_tokens() {
    let mut m = message(json!([]), "end_turn");
    m["usage"] = json!({ "input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 9 });
    let (body, usage) = respond(m);
    assert_eq!(
        usage,
        Usage { input_tokens: 125, output_tokens: 9, cached_input_tokens: 100, reasoning_tokens: 0 }
    );
    assert_eq!(body["usage"]["prompt_tokens"], 125);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
}

#[test]
fn null_and_missing_usage_count_zero() {
    let mut m = message(json!([]), "end_turn");
    m["usage"] = json!({ "input_tokens": 5, "cache_creation_input_tokens": null, "output_tokens": 1 });
    assert_eq!(respond(m.clone()).1.input_tokens, 5);
    m.as_object_mut().unwrap().remove("usage");
    assert_eq!(respond(m).1, Usage::default());
}

#[test]
fn unreadable_bodies_are_bad_upstream_responses() {
    let bodies: [&[u8]; 6] = [
        b"",
        b"not json",
        b"[1,2]",
        br#"{"type":"message","content":[]}"#,
        br#"{"id":"m","content":[{"type":"text"}]}"#,
        br#"{"id":"m","content":[{"type":"tool_use","name":"f","input":{}}]}"#,
    ];
    for body in bodies {
        let err = adapter().chat_response(body, &target()).unwrap_err();
        assert!(matches!(err, AiError::BadUpstreamResponse(_)), "{}: {err:?}", String::from_utf8_lossy(body));
        assert_eq!(err.status(), 502);
    }
}

fn error_of(status: u16, body: &[u8]) -> (u16, Value) {
    let err = adapter().error_response(status, body);
    (err.status(), err.to_openai_json()["error"].clone())
}

fn anthropic_error(kind: &str, message: &str) -> Vec<u8> {
    json!({ "type": "error", "error": { "type": kind, "message": message } }).to_string().into_bytes()
}

#[test]
fn error_types_map_to_openai_types() {
    let cases = [
        (400, "invalid_request_error", 400, "invalid_request_error"),
        (401, "authentication_error", 401, "authentication_error"),
        (403, "permission_error", 403, "permission_error"),
        (404, "not_found_error", 404, "invalid_request_error"),
        (413, "request_too_large", 413, "invalid_request_error"),
        (429, "rate_limit_error", 429, "rate_limit_error"),
        (500, "api_error", 502, "upstream_error"),
        (529, "overloaded_error", 503, "upstream_error"),
        (418, "teapot_error", 418, "upstream_error"),
    ];
    for (status, kind, client_status, client_kind) in cases {
        let (got_status, error) = error_of(status, &anthropic_error(kind, "why"));
        assert_eq!(got_status, client_status, "{kind}");
        assert_eq!(error["type"], client_kind, "{kind}");
        assert_eq!(error["code"], kind);
        assert_eq!(error["message"], "why");
    }
}

#[test]
fn overloaded_type_under_another_status_is_still_503() {
    assert_eq!(error_of(500, &anthropic_error("overloaded_error", "busy")).0, 503);
}

#[test]
fn non_json_error_bodies() {
    let (status, error) = error_of(502, b"<html>bad gateway</html>");
    assert_eq!(status, 502);
    assert_eq!(error["message"], "the upstream provider answered with status 502: <html>bad gateway</html>");
    assert_eq!(error["type"], "upstream_error");
    assert_eq!(error["code"], Value::Null);

    let (status, error) = error_of(401, b"");
    assert_eq!(status, 401);
    assert_eq!(error["type"], "authentication_error");
    assert_eq!(error["message"], "the upstream provider answered with status 401");

    let (status, error) = error_of(529, b"overloaded");
    assert_eq!((status, error["code"].clone()), (503, json!("overloaded_error")));
}

#[test]
fn json_error_without_anthropic_shape_uses_status() {
    let (status, error) = error_of(429, br#"{"error":{"message":"slow down"}}"#);
    assert_eq!(status, 429);
    assert_eq!(error["message"], "slow down");
    assert_eq!(error["type"], "rate_limit_error");
    let (_, error) = error_of(400, br#"{"message":"flat"}"#);
    assert_eq!(error["message"], "the upstream provider answered with status 400: {\"message\":\"flat\"}");
}

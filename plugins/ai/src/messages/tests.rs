use serde_json::{json, Value};
use tollgate_core::LocalReply;

use super::*;
use crate::{AiError, Usage};

fn convert(request: Value) -> (Value, Vec<String>) {
    let parsed: MessagesRequest = serde_json::from_value(request).unwrap();
    let (chat, dropped) = to_chat_request(&parsed);
    (serde_json::to_value(chat).unwrap(), dropped)
}

#[test]
fn a_tool_using_conversation_becomes_openai_messages_in_order() {
    let (chat, dropped) = convert(json!({
        "model": "m",
        "max_tokens": 1024,
        "system": [
            { "type": "text", "text": "You are terse.", "cache_control": { "type": "ephemeral" } },
            { "type": "text", "text": "Answer in English." }
        ],
        "messages": [
            { "role": "user", "content": [
                { "type": "text", "text": "Weather in Paris?" },
                { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBO" } }
            ] },
            { "role": "assistant", "content": [
                { "type": "thinking", "thinking": "I should call the tool.", "signature": "sig" },
                { "type": "text", "text": "Checking." },
                { "type": "tool_use", "id": "toolu_1", "name": "weather", "input": { "city": "Paris" } }
            ] },
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_1", "content": [{ "type": "text", "text": "18C" }] },
                { "type": "text", "text": "And tomorrow?" }
            ] }
        ],
        "tools": [
            { "name": "weather", "description": "Current weather", "input_schema": { "type": "object" } },
            { "type": "web_search_20250305", "name": "web_search", "max_uses": 3 }
        ],
        "tool_choice": { "type": "any", "disable_parallel_tool_use": true },
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_k": 5,
        "metadata": { "user_id": "u-42" },
        "stream": true
    }));
    assert_eq!(
        chat,
        json!({
            "model": "m",
            "messages": [
                { "role": "system", "content": "You are terse.\nAnswer in English." },
                { "role": "user", "content": [
                    { "type": "text", "text": "Weather in Paris?" },
                    { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBO" } }
                ] },
                { "role": "assistant", "content": "Checking.", "tool_calls": [
                    { "id": "toolu_1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } }
                ] },
                { "role": "tool", "content": "18C", "tool_call_id": "toolu_1" },
                { "role": "user", "content": "And tomorrow?" }
            ],
            "stream": true,
            "stream_options": { "include_usage": true },
            "temperature": 0.2,
            "stop": ["END"],
            "max_tokens": 1024,
            "user": "u-42",
            "tools": [{ "type": "function", "function": {
                "name": "weather", "description": "Current weather", "parameters": { "type": "object" }
            } }],
            "tool_choice": "required",
            "parallel_tool_calls": false
        })
    );
    assert_eq!(dropped, vec!["tools[1]", "top_k"]);
}

#[test]
fn what_no_other_provider_takes_is_listed_as_dropped() {
    let (chat, dropped) = convert(json!({
        "model": "m",
        "max_tokens": 10,
        "thinking": { "type": "enabled", "budget_tokens": 2048 },
        "service_tier": "auto",
        "tool_choice": { "type": "tool", "name": "f" },
        "messages": [{ "role": "user", "content": [
            { "type": "document", "source": { "type": "text", "media_type": "text/plain", "data": "x" } },
            { "type": "tool_result", "tool_use_id": "t", "is_error": true, "content": "boom" },
            { "type": "image", "source": { "type": "file", "file_id": "file_1" } }
        ] }]
    }));
    assert_eq!(dropped, vec!["messages[0].content[0]", "messages[0].content[2]", "thinking", "service_tier"]);
    assert_eq!(chat["messages"], json!([{ "role": "tool", "content": "Error: boom", "tool_call_id": "t" }]));
    assert!(chat.get("tool_choice").is_none(), "a tool_choice without tools is not sent");
    assert!(chat.get("stream_options").is_none());
}

#[test]
fn count_tokens_estimates_the_text_the_model_reads() {
    let request: MessagesRequest = serde_json::from_value(json!({
        "model": "m",
        "system": "abcd",
        "messages": [{ "role": "user", "content": "efghijkl" }]
    }))
    .unwrap();
    assert_eq!(estimate_input_tokens(&request), 3);
}

fn completion(message: Value, finish: &str) -> Vec<u8> {
    json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }]
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_completion_becomes_a_message_with_thinking_text_and_tool_use() {
    let usage = Usage { input_tokens: 120, output_tokens: 30, cached_input_tokens: 100, reasoning_tokens: 0 };
    let body = completion(
        json!({
            "role": "assistant",
            "content": "Let me look.",
            "reasoning_content": "The user wants weather.",
            "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } }]
        }),
        "tool_calls",
    );
    assert_eq!(
        message_from_completion(&body, &usage).unwrap(),
        json!({
            "id": "msg_abc",
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o",
            "content": [
                { "type": "thinking", "thinking": "The user wants weather.", "signature": "" },
                { "type": "text", "text": "Let me look." },
                { "type": "tool_use", "id": "call_1", "name": "weather", "input": { "city": "Paris" } }
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": { "input_tokens": 20, "output_tokens": 30, "cache_read_input_tokens": 100 }
        })
    );
}

#[test]
fn stop_reasons_and_broken_tool_arguments() {
    let usage = Usage::default();
    for (finish, expected) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_use"),
    ] {
        let body = completion(json!({ "role": "assistant", "content": "x" }), finish);
        assert_eq!(message_from_completion(&body, &usage).unwrap()["stop_reason"], expected, "{finish}");
    }
    // A provider that ends a turn of tool calls with a plain stop still gets tool_use.
    let body = completion(
        json!({ "role": "assistant", "content": null, "tool_calls": [
            { "id": "c", "type": "function", "function": { "name": "f", "arguments": "not json" } }
        ] }),
        "stop",
    );
    let message = message_from_completion(&body, &usage).unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["content"],
        json!([{ "type": "tool_use", "id": "c", "name": "f", "input": { "arguments": "not json" } }])
    );
    assert!(message_from_completion(b"{}", &usage).is_err());
}

/// Parses an Anthropic SSE text into (event name, data) pairs, checking each name matches its data's type.
pub(crate) fn anthropic_events(text: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(text).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name, "{event}");
            data
        })
        .collect()
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({ "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
    format!("data: {chunk}\n\n")
}

#[test]
fn a_stream_of_reasoning_text_and_two_tool_calls_becomes_content_blocks() {
    let mut encoder = MessagesEncoder::new("chatcmpl-s", "m");
    let mut input = chunk(json!({ "role": "assistant" }), None);
    input += &chunk(json!({ "reasoning_content": "Hmm" }), None);
    input += &chunk(json!({ "reasoning_content": "." }), None);
    input += &chunk(json!({ "content": "Sure" }), None);
    encoder.encode(input.as_bytes());
    // The next body callback: the calls, the second with its id repeated on every delta.
    let mut input = chunk(
        json!({ "tool_calls": [{ "index": 0, "id": "call_a", "type": "function", "function": { "name": "f", "arguments": "" } }] }),
        None,
    );
    input += &chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"x\":" } }] }), None);
    input += &chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "1}" } }] }), None);
    input += &chunk(
        json!({ "tool_calls": [{ "index": 1, "id": "call_b", "function": { "name": "g", "arguments": "{}" } }] }),
        None,
    );
    input += &chunk(
        json!({ "tool_calls": [{ "index": 1, "id": "call_b", "function": { "arguments": "" } }] }),
        None,
    );
    input += &chunk(json!({}), Some("tool_calls"));
    input +=
        "data: {\"id\":\"chatcmpl-s\",\"choices\":[],\"usage\":{\"prompt_tokens\":9}}\n\ndata: [DONE]\n\n";
    encoder.encode(input.as_bytes());
    encoder.finish(&Usage { input_tokens: 9, output_tokens: 4, ..Usage::default() });
    assert!(encoder.ended());
    let start = |index: u64, block: Value| json!({ "type": "content_block_start", "index": index, "content_block": block });
    let delta =
        |index: u64, delta: Value| json!({ "type": "content_block_delta", "index": index, "delta": delta });
    let stop = |index: u64| json!({ "type": "content_block_stop", "index": index });
    assert_eq!(
        anthropic_events(&encoder.take()),
        vec![
            json!({ "type": "message_start", "message": {
                "id": "msg_s", "type": "message", "role": "assistant", "model": "m", "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": { "input_tokens": 0, "output_tokens": 0 }
            } }),
            start(0, json!({ "type": "thinking", "thinking": "", "signature": "" })),
            delta(0, json!({ "type": "thinking_delta", "thinking": "Hmm" })),
            delta(0, json!({ "type": "thinking_delta", "thinking": "." })),
            stop(0),
            start(1, json!({ "type": "text", "text": "" })),
            delta(1, json!({ "type": "text_delta", "text": "Sure" })),
            stop(1),
            start(2, json!({ "type": "tool_use", "id": "call_a", "name": "f", "input": {} })),
            delta(2, json!({ "type": "input_json_delta", "partial_json": "{\"x\":" })),
            delta(2, json!({ "type": "input_json_delta", "partial_json": "1}" })),
            stop(2),
            start(3, json!({ "type": "tool_use", "id": "call_b", "name": "g", "input": {} })),
            delta(3, json!({ "type": "input_json_delta", "partial_json": "{}" })),
            stop(3),
            json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use", "stop_sequence": null },
                "usage": { "input_tokens": 9, "output_tokens": 4 } }),
            json!({ "type": "message_stop" }),
        ]
    );
    encoder.finish(&Usage::default());
    encoder.fail(&AiError::TruncatedStream);
    assert!(encoder.take().is_empty(), "nothing after the end");
}

#[test]
fn a_failed_stream_ends_with_an_error_event_after_what_was_written() {
    let mut encoder = MessagesEncoder::new("chatcmpl-s", "m");
    encoder.encode(chunk(json!({ "content": "Hel" }), None).as_bytes());
    encoder.fail(&AiError::TruncatedStream);
    let events = anthropic_events(&encoder.take());
    assert_eq!(events.len(), 4, "{events:#?}");
    assert_eq!(events[2]["delta"]["text"], "Hel");
    assert_eq!(events[3]["error"]["type"], "api_error");
    assert!(events[3]["error"]["message"].as_str().unwrap().contains("ended before"), "{}", events[3]);
    // An error a pass-through provider put in its stream, and a chunk that is not JSON, end it the same way.
    let mut encoder = MessagesEncoder::new("chatcmpl-s", "m");
    encoder.encode(b"data: {\"error\":{\"message\":\"slow down\",\"code\":429}}\n\n");
    assert_eq!(
        anthropic_events(&encoder.take()),
        vec![json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "slow down" } })]
    );
    let mut encoder = MessagesEncoder::new("chatcmpl-s", "m");
    encoder.encode(b"data: {not json\n\n");
    assert_eq!(anthropic_events(&encoder.take())[0]["error"]["type"], "api_error");
}

#[test]
fn an_empty_stream_is_still_a_whole_message() {
    let mut encoder = MessagesEncoder::new("chatcmpl-s", "m");
    encoder.finish(&Usage::default());
    let kinds: Vec<Value> =
        anthropic_events(&encoder.take()).into_iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds, vec!["message_start", "message_delta", "message_stop"]);
}

#[test]
fn refusals_take_anthropics_error_shape_and_keep_their_reason() {
    let reply = LocalReply::error(401, "authentication_error", "missing_credentials", "no API key");
    let converted = to_anthropic_reply(reply.clone());
    assert_eq!(converted.status, 401);
    assert_eq!(converted.reason(), Some("missing_credentials"));
    assert_eq!(converted.headers, reply.headers);
    assert_eq!(
        serde_json::from_slice::<Value>(&converted.body).unwrap(),
        json!({ "type": "error", "error": { "type": "authentication_error", "message": "no API key" } })
    );
    let invalid =
        AiError::InvalidRequest { param: Some("messages".into()), message: "must not be empty".into() };
    let body: Value = serde_json::from_slice(&to_anthropic_reply(invalid.to_reply()).body).unwrap();
    assert_eq!(
        body["error"],
        json!({ "type": "invalid_request_error", "message": "messages: must not be empty" })
    );
    for (status, kind) in [
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
    ] {
        let reply = to_anthropic_reply(LocalReply::error(status, "x", "y", "z"));
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["type"], kind, "{status}");
    }
    // Not an error: a model list, a configured plain-text reply.
    let ok = LocalReply::json(200, "list", &json!({ "data": [] }));
    assert_eq!(to_anthropic_reply(ok.clone()), ok);
    let text = LocalReply { status: 503, headers: vec![], body: b"down".to_vec(), details: String::new() };
    assert_eq!(to_anthropic_reply(text.clone()), text);
}

#[test]
fn anthropic_paths() {
    assert!(is_anthropic_path("/v1/messages"));
    assert!(is_anthropic_path("/v1/messages/count_tokens"));
    assert!(!is_anthropic_path("/v1/messages2"));
    assert!(!is_anthropic_path("/v1/chat/completions"));
}

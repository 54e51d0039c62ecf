use serde_json::{json, Value};

use super::testing::{adapter, deltas, event, run_stream, sse_events, target};
use super::JSON_TOOL;
use crate::adapter::{Adapter, ChunkSink};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

fn start(id: &str, usage: Value) -> SseEvent {
    event(
        "message_start",
        json!({ "type": "message_start", "message": {
        "id": id, "type": "message", "role": "assistant", "model": "claude-y", "content": [], "stop_reason": null, "usage": usage } }),
    )
}

fn block(index: u64, content_block: Value) -> SseEvent {
    event(
        "content_block_start",
        json!({ "type": "content_block_start", "index": index, "content_block": content_block }),
    )
}

fn text(index: u64, text: &str) -> SseEvent {
    event(
        "content_block_delta",
        json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": text } }),
    )
}

fn json_delta(index: u64, partial: &str) -> SseEvent {
    event(
        "content_block_delta",
        json!({ "type": "content_block_delta", "index": index, "delta": { "type": "input_json_delta", "partial_json": partial } }),
    )
}

fn tool(index: u64, id: &str, name: &str) -> SseEvent {
    block(index, json!({ "type": "tool_use", "id": id, "name": name, "input": {} }))
}

fn stop_reason(reason: &str, output_tokens: u64) -> SseEvent {
    event(
        "message_delta",
        json!({ "type": "message_delta", "delta": { "stop_reason": reason }, "usage": { "output_tokens": output_tokens } }),
    )
}

fn message_stop() -> SseEvent {
    event("message_stop", json!({ "type": "message_stop" }))
}

fn text_block() -> Value {
    json!({ "type": "text", "text": "" })
}

#[test]
fn text_stream_stamps_id_model_and_role() {
    let run = run_stream(&[
        start("msg_9", json!({ "input_tokens": 7, "output_tokens": 1 })),
        block(0, text_block()),
        text(0, "Hi"),
        stop_reason("end_turn", 3),
        message_stop(),
    ]);
    run.result.unwrap();
    assert_eq!(run.chunks.len(), 3);
    for chunk in &run.chunks {
        assert_eq!(chunk["id"], "msg_9");
        assert_eq!(chunk["model"], "claude-y");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["created"], 1700000000);
        assert!(chunk.get("usage").is_none());
    }
    assert_eq!(
        deltas(&run.chunks),
        vec![
            json!({ "delta": { "role": "assistant" }, "finish_reason": null }),
            json!({ "delta": { "content": "Hi" }, "finish_reason": null }),
            json!({ "delta": {}, "finish_reason": "stop" }),
        ]
    );
    assert_eq!(run.usage, Usage { input_tokens: 7, output_tokens: 3, ..Usage::default() });
}

#[test]
fn content_chunks_are_counted_for_time_to_first_token() {
    let mut translator = adapter().stream_translator(&target());
    let mut sink = ChunkSink::new(&target());
    translator.on_event(&start("m", json!({})), &mut sink).unwrap();
    assert_eq!(sink.content_chunks, 0, "the role chunk carries no text");
    translator.on_event(&text(0, "a"), &mut sink).unwrap();
    translator.on_event(&tool(1, "t", "f"), &mut sink).unwrap();
    assert_eq!(sink.content_chunks, 2);
}

#[test]
fn tool_call_indexes_count_tool_calls_only() {
    let run = run_stream(&[
        start("m", json!({})),
        block(0, json!({ "type": "thinking", "thinking": "" })),
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "thinking_delta", "thinking": "secret" } }),
        ),
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "signature_delta", "signature": "s" } }),
        ),
        block(1, text_block()),
        text(1, "ok"),
        tool(2, "toolu_a", "f"),
        json_delta(2, ""),
        json_delta(2, "{\"x\":1}"),
        tool(3, "toolu_b", "g"),
        json_delta(3, "{}"),
        stop_reason("tool_use", 5),
        message_stop(),
    ]);
    run.result.unwrap();
    assert_eq!(
        deltas(&run.chunks),
        vec![
            json!({ "delta": { "role": "assistant" }, "finish_reason": null }),
            json!({ "delta": { "reasoning_content": "secret" }, "finish_reason": null }),
            json!({ "delta": { "content": "ok" }, "finish_reason": null }),
            json!({ "delta": { "tool_calls": [{ "index": 0, "id": "toolu_a", "type": "function", "function": { "name": "f", "arguments": "" } }] }, "finish_reason": null }),
            json!({ "delta": { "tool_calls": [{ "index": 0, "function": { "arguments": "{\"x\":1}" } }] }, "finish_reason": null }),
            json!({ "delta": { "tool_calls": [{ "index": 1, "id": "toolu_b", "type": "function", "function": { "name": "g", "arguments": "" } }] }, "finish_reason": null }),
            json!({ "delta": { "tool_calls": [{ "index": 1, "function": { "arguments": "{}" } }] }, "finish_reason": null }),
            json!({ "delta": {}, "finish_reason": "tool_calls" }),
        ]
    );
}

#[test]
fn json_answer_streams_as_content_and_stops() {
    let run = run_stream(&[
        start("m", json!({})),
        tool(0, "toolu_j", JSON_TOOL),
        json_delta(0, "{\"a\""),
        json_delta(0, ":2}"),
        stop_reason("tool_use", 5),
        message_stop(),
    ]);
    run.result.unwrap();
    let contents: String =
        run.chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(contents, "{\"a\":2}");
    assert!(run.chunks.iter().all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
    assert_eq!(run.chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[test]
fn usage_sums_cache_tokens_and_takes_latest_counts() {
    let run = run_stream(&[
        start(
            "m",
            json!({ "input_tokens": 10, "cache_read_input_tokens": 50, "cache_creation_input_tokens": 5, "output_tokens": 1 }),
        ),
        event(
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": null }, "usage": { "output_tokens": 4 } }),
        ),
        event(
            "message_delta",
            json!({ "type": "message_delta", "delta": {}, "usage": { "output_tokens": 9, "input_tokens": 11 } }),
        ),
        message_stop(),
    ]);
    run.result.unwrap();
    assert_eq!(
        run.usage,
        Usage { input_tokens: 66, output_tokens: 9, cached_input_tokens: 50, reasoning_tokens: 0 }
    );
}

#[test]
fn finish_chunk_at_message_stop_when_no_stop_reason_and_only_once() {
    let run = run_stream(&[start("m", json!({})), text(0, "x"), message_stop()]);
    assert_eq!(run.chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
    let run = run_stream(&[
        start("m", json!({})),
        stop_reason("max_tokens", 1),
        stop_reason("end_turn", 2),
        message_stop(),
    ]);
    let finishes: Vec<&Value> =
        run.chunks.iter().map(|c| &c["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    assert_eq!(finishes, vec![&json!("length")]);
}

#[test]
fn missing_message_stop_is_truncated() {
    let run = run_stream(&[start("m", json!({})), text(0, "partial"), stop_reason("end_turn", 1)]);
    assert_eq!(run.result, Err(AiError::TruncatedStream));
    assert_eq!(run_stream(&[]).result, Err(AiError::TruncatedStream));
}

#[test]
fn events_after_message_stop_are_ignored() {
    let run =
        run_stream(&[start("m", json!({})), message_stop(), text(0, "late"), event("bogus", json!("x"))]);
    run.result.unwrap();
    assert!(run.chunks.iter().all(|c| c["choices"][0]["delta"].get("content").is_none()));
}

#[test]
fn text_before_message_start_still_carries_the_role_once() {
    let run = run_stream(&[text(0, "early"), start("m", json!({})), text(0, "!"), message_stop()]);
    run.result.unwrap();
    let roles = run.chunks.iter().filter(|c| c["choices"][0]["delta"].get("role").is_some()).count();
    assert_eq!(roles, 1);
    assert_eq!(
        deltas(&run.chunks)[0],
        json!({ "delta": { "role": "assistant", "content": "early" }, "finish_reason": null })
    );
}

#[test]
fn arguments_for_a_block_that_never_started_are_an_error() {
    let run = run_stream(&[start("m", json!({})), json_delta(4, "{}")]);
    assert!(matches!(run.result, Err(AiError::BadUpstreamResponse(_))));
    let run = run_stream(&[start("m", json!({})), block(0, text_block()), json_delta(0, "{}")]);
    assert!(matches!(run.result, Err(AiError::BadUpstreamResponse(_))));
}

#[test]
fn server_tool_input_is_hidden() {
    let run = run_stream(&[
        start("m", json!({})),
        block(0, json!({ "type": "server_tool_use", "id": "srv", "name": "web_search", "input": {} })),
        json_delta(0, "{\"query\":\"x\"}"),
        message_stop(),
    ]);
    run.result.unwrap();
    assert!(run.chunks.iter().all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
}

#[test]
fn repeated_block_start_opens_one_tool_call() {
    let run = run_stream(&[
        start("m", json!({})),
        tool(0, "t", "f"),
        tool(0, "t", "f"),
        tool(1, "u", "g"),
        message_stop(),
    ]);
    run.result.unwrap();
    let indexes: Vec<&Value> =
        run.chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0].get("index")).collect();
    assert_eq!(indexes, vec![&json!(0), &json!(1)]);
}

#[test]
fn malformed_events() {
    let cases = [
        SseEvent { event: Some("content_block_delta".into()), data: "{not json".into() },
        event("content_block_start", json!({ "type": "content_block_start", "content_block": text_block() })),
        event("content_block_delta", json!({ "type": "content_block_delta", "index": "zero", "delta": {} })),
        block(0, json!({ "type": "tool_use", "input": {} })),
    ];
    for bad in cases {
        let run = run_stream(&[start("m", json!({})), bad.clone()]);
        assert!(matches!(run.result, Err(AiError::BadUpstreamResponse(_))), "{bad:?}");
    }
}

#[test]
fn unknown_events_pings_and_empty_data_are_ignored() {
    let run = run_stream(&[
        start("m", json!({})),
        event("ping", json!({ "type": "ping" })),
        event("brand_new_event", json!({ "type": "brand_new_event", "stuff": [1] })),
        SseEvent { event: Some("ping".into()), data: String::new() },
        event("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        message_stop(),
    ]);
    run.result.unwrap();
    assert_eq!(run.chunks.len(), 2);
}

#[test]
fn data_type_wins_over_event_name_and_name_alone_works() {
    let mismatched =
        SseEvent { event: Some("ping".into()), data: json!({ "type": "message_stop" }).to_string() };
    run_stream(&[mismatched]).result.unwrap();
    let unnamed_type = SseEvent { event: Some("message_stop".into()), data: "{}".into() };
    run_stream(&[unnamed_type]).result.unwrap();
}

#[test]
fn error_event_becomes_upstream_error() {
    let overloaded = event(
        "error",
        json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
    );
    let run = run_stream(&[start("m", json!({})), text(0, "par"), overloaded]);
    match run.result {
        Err(AiError::Upstream { status, kind, code, message }) => {
            assert_eq!(
                (status, kind.as_str(), code.as_deref(), message.as_str()),
                (503, "upstream_error", Some("overloaded_error"), "Overloaded")
            );
        }
        other => panic!("{other:?}"),
    }
    let limited = event(
        "error",
        json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "slow" } }),
    );
    let err = run_stream(&[limited]).result.unwrap_err();
    assert_eq!((err.status(), err.kind()), (429, "rate_limit_error"));
    let bare = event("error", json!({ "type": "error" }));
    let err = run_stream(&[bare]).result.unwrap_err();
    assert_eq!(err.status(), 502);
}

#[test]
fn sse_text_helper_round_trip() {
    let text = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\"}}\n\n: comment\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let events = sse_events(text);
    assert_eq!(events.len(), 2);
    let run = run_stream(&events);
    run.result.unwrap();
    assert_eq!(run.chunks[0]["id"], "m1");
}

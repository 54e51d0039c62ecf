use serde_json::{json, Value};

use super::conformance::{adapter, client_events, target};
use crate::adapter::{Adapter, ChunkSink, StreamTranslator};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

fn event(data: Value) -> SseEvent {
    SseEvent { event: None, data: data.to_string() }
}

fn text(text: &str, finish: Option<&str>) -> Value {
    let mut candidate = json!({ "content": { "role": "model", "parts": [{ "text": text }] } });
    if let Some(reason) = finish {
        candidate["finishReason"] = json!(reason);
    }
    json!({ "candidates": [candidate] })
}

struct Run {
    translator: Box<dyn StreamTranslator>,
    sink: ChunkSink,
}

impl Run {
    fn new() -> Run {
        Run { translator: adapter().stream_translator(&target()), sink: ChunkSink::new(&target()) }
    }

    fn feed(&mut self, data: Value) -> Result<(), AiError> {
        self.translator.on_event(&event(data), &mut self.sink)
    }

    fn chunks(&mut self) -> Vec<Value> {
        client_events(&self.sink.take())
    }
}

#[test]
fn a_stream_without_a_finish_reason_is_truncated() {
    let mut run = Run::new();
    assert_eq!(run.translator.finish(&mut run.sink), Err(AiError::TruncatedStream), "no events at all");
    run.feed(text("partial", None)).unwrap();
    assert_eq!(run.translator.finish(&mut run.sink), Err(AiError::TruncatedStream));
}

#[test]
fn malformed_events_are_bad_upstream_responses() {
    let mut run = Run::new();
    for data in ["{oops", "[1]", r#"{"candidates":"many"}"#] {
        let err =
            run.translator.on_event(&SseEvent { event: None, data: data.into() }, &mut run.sink).unwrap_err();
        assert!(matches!(err, AiError::BadUpstreamResponse(_)), "{data}: {err:?}");
    }
}

#[test]
fn an_error_event_mid_stream_is_the_providers_error() {
    let mut run = Run::new();
    run.feed(text("Hel", None)).unwrap();
    let err = run
        .feed(json!({ "error": { "code": 503, "message": "overloaded", "status": "UNAVAILABLE" } }))
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (502, Some("unavailable")));
    assert_eq!(err.to_string(), "overloaded");
}

#[test]
fn keep_alive_events_and_empty_text_emit_nothing_and_thoughts_are_reasoning() {
    let mut run = Run::new();
    run.translator.on_event(&SseEvent { event: None, data: " ".into() }, &mut run.sink).unwrap();
    run.feed(json!({ "candidates": [{ "content": { "parts": [{ "text": "" }] } }] })).unwrap();
    assert!(run.chunks().is_empty());
    run.feed(
        json!({ "candidates": [{ "content": { "parts": [{ "text": "pondering", "thought": true }] } }] }),
    )
    .unwrap();
    let chunks = run.chunks();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({ "role": "assistant", "reasoning_content": "pondering" })
    );
    assert_eq!(run.sink.content_chunks, 0, "reasoning is not the first token of the answer");
}

#[test]
fn a_finish_with_nothing_before_it_still_carries_the_role() {
    let mut run = Run::new();
    run.feed(json!({ "candidates": [{ "content": { "role": "model" }, "finishReason": "SAFETY" }] }))
        .unwrap();
    let chunks = run.chunks();
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({ "role": "assistant" }));
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(run.translator.finish(&mut run.sink), Ok(()));
}

#[test]
fn each_candidate_is_its_own_choice_and_all_must_finish() {
    let mut run = Run::new();
    let both = |a: Value, b: Value| json!({ "candidates": [a, b] });
    let part = |t: &str, i: u32| json!({ "content": { "parts": [{ "text": t }] }, "index": i });
    run.feed(both(part("A", 0), part("B", 1))).unwrap();
    run.feed(json!({ "candidates": [
        { "content": { "parts": [{ "text": "a" }] }, "index": 0, "finishReason": "STOP" },
        { "content": { "parts": [{ "text": "b" }] }, "index": 1 }
    ] }))
    .unwrap();
    assert_eq!(
        run.translator.finish(&mut run.sink),
        Err(AiError::TruncatedStream),
        "choice 1 never finished"
    );
    run.feed(json!({ "candidates": [{ "index": 1, "finishReason": "MAX_TOKENS" }] })).unwrap();
    assert_eq!(run.translator.finish(&mut run.sink), Ok(()));
    let deltas: Vec<(u64, Value, Value)> = run
        .chunks()
        .iter()
        .map(|c| {
            let choice = &c["choices"][0];
            (choice["index"].as_u64().unwrap(), choice["delta"].clone(), choice["finish_reason"].clone())
        })
        .collect();
    assert_eq!(
        deltas,
        [
            (0, json!({ "role": "assistant", "content": "A" }), Value::Null),
            (1, json!({ "role": "assistant", "content": "B" }), Value::Null),
            (0, json!({ "content": "a" }), Value::Null),
            (0, json!({}), json!("stop")),
            (1, json!({ "content": "b" }), Value::Null),
            (1, json!({}), json!("length")),
        ]
    );
}

#[test]
fn tool_calls_are_numbered_per_choice_with_stable_ids() {
    let mut run = Run::new();
    let call = |name: &str| json!({ "functionCall": { "name": name, "args": { "n": 1 } } });
    run.feed(json!({ "candidates": [{ "content": { "parts": [call("a")] } }] })).unwrap();
    run.feed(json!({ "candidates": [{ "content": { "parts": [call("b"), { "functionCall": { "name": "c", "id": "own" } }] },
        "finishReason": "STOP" }] }))
    .unwrap();
    let chunks = run.chunks();
    let calls: Vec<Value> =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"].get("tool_calls").cloned()).collect();
    assert_eq!(calls[0][0]["index"], 0);
    assert_eq!(calls[0][0]["id"], "call_test_0", "no responseId: keyed by the request id");
    assert_eq!(calls[1][0]["index"], 1);
    assert_eq!(calls[1][0]["id"], "call_test_1");
    assert_eq!(
        calls[2][0],
        json!({ "index": 2, "id": "own", "type": "function",
        "function": { "name": "c", "arguments": "{}" } })
    );
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[0]["id"], "chatcmpl-test");
    assert_eq!(chunks[0]["model"], "gemini-2.5-flash");
    assert_eq!(run.sink.content_chunks, 3);
}

#[test]
fn usage_keeps_the_latest_report_even_from_a_trailing_usage_only_event() {
    let mut run = Run::new();
    run.feed(json!({ "candidates": [{ "content": { "parts": [{ "text": "x" }] } }],
        "usageMetadata": { "promptTokenCount": 4 } }))
        .unwrap();
    run.feed(text("y", Some("STOP"))).unwrap();
    assert_eq!(run.translator.usage().input_tokens, 4, "an event without usage keeps the last one");
    run.feed(
        json!({ "usageMetadata": { "promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 3,
        "cachedContentTokenCount": 1 } }),
    )
    .unwrap();
    assert_eq!(
        run.translator.usage(),
        Usage { input_tokens: 4, output_tokens: 5, cached_input_tokens: 1, reasoning_tokens: 3 }
    );
    assert_eq!(run.translator.finish(&mut run.sink), Ok(()));
}

#[test]
fn a_blocked_prompt_ends_the_stream_with_content_filter() {
    let mut run = Run::new();
    run.feed(json!({ "promptFeedback": { "blockReason": "PROHIBITED_CONTENT" }, "usageMetadata": { "promptTokenCount": 9 },
        "responseId": "rb", "modelVersion": "gemini-2.5-flash-001" }))
    .unwrap();
    assert_eq!(run.translator.finish(&mut run.sink), Ok(()));
    let chunks = run.chunks();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["id"], "chatcmpl-rb");
    assert_eq!(chunks[0]["model"], "gemini-2.5-flash-001");
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(run.translator.usage().input_tokens, 9);
}

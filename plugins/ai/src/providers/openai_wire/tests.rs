use serde_json::{json, Value};

use super::*;
use crate::adapter::{ChunkSink, StreamTranslator, Target};
use crate::sse::SseEvent;

fn target() -> Target<'static> {
    Target { upstream_model: "gpt-4o", client_model: "gpt-4o", created: 1700000000, request_id: "t" }
}

/// Feeds `events` (data only) and returns the data of each event written, plus the translator.
fn run(events: &[&str]) -> (Result<(), AiError>, Vec<String>, PassThroughStream, ChunkSink) {
    let mut stream = PassThroughStream::new(&target());
    let mut sink = ChunkSink::new(&target());
    let mut result = Ok(());
    for data in events {
        result = stream.on_event(&SseEvent { event: None, data: (*data).into() }, &mut sink);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = stream.finish(&mut sink);
    }
    let text = String::from_utf8(sink.bytes.clone()).unwrap();
    let written = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap().to_string())
        .collect();
    (result, written, stream, sink)
}

const ROLE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000005,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#;
const TEXT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000005,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#;
const STOP: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000005,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#;
const USAGE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000005,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

#[test]
fn chunks_pass_through_without_the_null_usage_and_the_usage_chunk_is_kept_back() {
    let (result, written, stream, sink) = run(&[ROLE, TEXT, STOP, USAGE, "[DONE]"]);
    result.unwrap();
    assert_eq!(written.len(), 3);
    assert_eq!(written[1], TEXT.replace(r#","usage":null"#, ""));
    assert!(written.iter().all(|w| !w.contains("usage")));
    let usage = stream.usage();
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.cached_input_tokens), (9, 2, 4));
    assert_eq!(sink.content_chunks, 1, "the empty role delta is not the first token");
    assert_eq!(
        (sink.id.as_str(), sink.model.as_str(), sink.created),
        ("chatcmpl-1", "gpt-4o-2024-08-06", 1700000005)
    );
}

#[test]
fn the_gateway_usage_chunk_looks_like_openai_s() {
    let (_, _, stream, mut sink) = run(&[TEXT, STOP, USAGE, "[DONE]"]);
    sink.bytes.clear();
    sink.usage_chunk(&stream.usage());
    let text = String::from_utf8(sink.take()).unwrap();
    let chunk: Value = serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap();
    let mut upstream: Value = serde_json::from_str(USAGE).unwrap();
    upstream["usage"]["total_tokens"] = json!(11);
    assert_eq!(chunk, upstream);
}

#[test]
fn chunks_without_a_usage_key_are_forwarded_byte_for_byte() {
    let plain = r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"llama3","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#;
    let (_, written, _, _) = run(&[plain, "[DONE]"]);
    assert_eq!(written, [plain]);
}

#[test]
fn usage_in_another_position_is_removed_by_rewriting() {
    let odd = r#"{"usage":null,"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#;
    let (_, written, _, _) = run(&[odd, "[DONE]"]);
    let data: Value = serde_json::from_str(&written[0]).unwrap();
    assert!(data.get("usage").is_none());
    assert_eq!(data["choices"][0]["delta"]["content"], "a");
}

#[test]
fn tool_call_deltas_count_as_content() {
    let call = r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#;
    let (_, written, _, sink) = run(&[call, "[DONE]"]);
    assert_eq!(sink.content_chunks, 1);
    assert_eq!(written, [call]);
}

#[test]
fn done_is_not_forwarded_and_ends_the_stream() {
    let (result, written, _, _) = run(&[TEXT, "[DONE]", TEXT]);
    result.unwrap();
    assert_eq!(written.len(), 1);
}

#[test]
fn a_stream_cut_mid_answer_is_truncated() {
    let (result, _, _, _) = run(&[ROLE, TEXT]);
    assert_eq!(result, Err(AiError::TruncatedStream));
    let (result, _, _, _) = run(&[]);
    assert_eq!(result, Err(AiError::TruncatedStream));
}

#[test]
fn a_finished_answer_without_done_is_complete() {
    let (result, _, _, _) = run(&[TEXT, STOP]);
    result.unwrap();
}

#[test]
fn every_choice_must_finish_when_done_is_missing() {
    let second = TEXT.replace(r#""index":0"#, r#""index":1"#);
    let (result, _, _, _) = run(&[TEXT, &second, STOP]);
    assert_eq!(result, Err(AiError::TruncatedStream));
}

#[test]
fn an_error_event_fails_the_stream() {
    let error = r#"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#;
    let (result, written, _, _) = run(&[TEXT, error]);
    let err = result.unwrap_err();
    assert_eq!((err.status(), err.kind()), (502, "server_error"));
    assert_eq!(err.to_string(), "The server had an error");
    assert_eq!(written.len(), 1);
    let vllm =
        r#"{"object":"error","message":"bad things","type":"BadRequestError","param":null,"code":400}"#;
    let (result, _, _, _) = run(&[vllm]);
    assert_eq!(result.unwrap_err().to_string(), "bad things");
}

#[test]
fn unreadable_events_are_bad_responses() {
    let (result, _, _, _) = run(&["not json"]);
    assert!(matches!(result, Err(AiError::BadUpstreamResponse(_))));
    let (result, _, _, _) = run(&["[1,2]"]);
    assert!(matches!(result, Err(AiError::BadUpstreamResponse(_))));
}

#[test]
fn empty_events_are_ignored() {
    let (result, written, _, _) = run(&["", TEXT, "  ", "[DONE]"]);
    result.unwrap();
    assert_eq!(written.len(), 1);
}

#[test]
fn a_200_error_body_is_an_upstream_error() {
    let err = read_response(br#"{"error":"model 'x' not found"}"#).unwrap_err();
    assert_eq!((err.status(), err.to_string().as_str()), (502, "model 'x' not found"));
    assert!(matches!(read_response(b"[]"), Err(AiError::BadUpstreamResponse(_))));
    assert_eq!(read_response(br#"{"choices":[]}"#).unwrap().usage, Usage::default());
}

#[test]
fn errors_in_every_known_shape() {
    let err = read_error(404, br#"{"error":"model \"llama9\" not found, try pulling it first"}"#);
    assert_eq!((err.status(), err.kind()), (404, "invalid_request_error"));
    assert_eq!(err.to_string(), "model \"llama9\" not found, try pulling it first");
    let err = read_error(
        429,
        br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!((err.status(), err.kind(), err.code()), (429, "requests", Some("rate_limit_exceeded")));
    let err = read_error(500, br#"{"error":{"code":500,"message":"","type":"server_error"}}"#);
    assert_eq!((err.status(), err.code()), (502, Some("500")));
    assert!(err.to_string().contains("status 500"));
    let err = read_error(502, b"<html>Bad Gateway</html>");
    assert_eq!((err.status(), err.kind()), (502, "upstream_error"));
    let err = read_error(422, br#"{"detail":[{"loc":["body",0],"msg":"x"}]}"#);
    assert_eq!(err.to_string(), "body.0: x");
}

#[test]
fn request_helpers_edit_the_body() {
    let mut body: Body = serde_json::from_value(json!({"stream": true, "stream_options": "odd",
        "messages": [{"role": "developer"}, "junk", {"role": "user"}], "a": 1, "b": 2}))
    .unwrap();
    request_stream_usage(&mut body);
    developer_as_system(&mut body);
    rename_field(&mut body, "a", "b");
    rename_field(&mut body, "missing", "c");
    assert_eq!(
        Value::Object(body),
        json!({"stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "system"}, "junk", {"role": "user"}], "b": 1})
    );
}

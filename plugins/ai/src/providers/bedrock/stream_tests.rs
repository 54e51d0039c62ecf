use serde_json::json;

use super::stream::BedrockStream;
use crate::adapter::{ChunkSink, StreamTranslator, Target};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

fn target() -> Target<'static> {
    Target { upstream_model: "m", client_model: "m", created: 1, request_id: "r" }
}

fn feed(events: &[(&str, serde_json::Value)]) -> (BedrockStream, ChunkSink, Result<(), AiError>) {
    let mut stream = BedrockStream::default();
    let mut sink = ChunkSink::new(&target());
    for (kind, data) in events {
        let event = SseEvent { event: Some(kind.to_string()), data: data.to_string() };
        if let Err(error) = stream.on_event(&event, &mut sink) {
            return (stream, sink, Err(error));
        }
    }
    let finished = stream.finish(&mut sink);
    (stream, sink, finished)
}

#[test]
fn the_stream_ends_at_metadata_only_after_message_stop() {
    let stop = ("messageStop", json!({"stopReason": "end_turn"}));
    let metadata =
        ("metadata", json!({"usage": {"inputTokens": 2, "outputTokens": 3, "cacheWriteInputTokens": 5}}));
    let (stream, _, finished) = feed(&[stop.clone(), metadata.clone()]);
    assert!(stream.ended() && finished.is_ok());
    assert_eq!(
        stream.usage(),
        Usage { input_tokens: 7, output_tokens: 3, cached_input_tokens: 0, reasoning_tokens: 0 }
    );
    assert_eq!(feed(&[stop]).2, Err(AiError::TruncatedStream));
    let (stream, _, finished) = feed(&[metadata]);
    assert!(stream.ended());
    assert_eq!(finished, Err(AiError::TruncatedStream));
    assert_eq!(feed(&[]).2, Err(AiError::TruncatedStream));
}

#[test]
fn tool_input_needs_a_started_tool_block() {
    let delta = ("contentBlockDelta", json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}));
    assert!(matches!(feed(&[delta]).2, Err(AiError::BadUpstreamResponse(_))));
    let start = (
        "contentBlockStart",
        json!({"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}}),
    );
    // A repeated start does not open a second call.
    let (stream, sink, _) = feed(&[start.clone(), start]);
    let text = String::from_utf8(sink.bytes).unwrap();
    assert_eq!(text.matches("\"id\":\"t\"").count(), 1, "{text}");
    assert!(!stream.ended());
    let no_index = ("contentBlockDelta", json!({"delta": {"toolUse": {"input": "{}"}}}));
    assert!(matches!(feed(&[no_index]).2, Err(AiError::BadUpstreamResponse(_))));
}

#[test]
fn malformed_events_are_errors_and_unknown_ones_are_skipped() {
    let (_, _, result) = feed(&[("contentBlockDelta", json!("not an object"))]);
    assert!(matches!(result, Err(AiError::BadUpstreamResponse(m)) if m.contains("contentBlockDelta")));
    let (_, sink, _) = feed(&[("someNewEvent", json!({"x": 1})), ("contentBlockStop", json!({}))]);
    assert!(sink.bytes.is_empty());
}

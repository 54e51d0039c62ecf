//! Helpers shared by this adapter's tests.

use serde_json::{json, Value};

use super::AnthropicAdapter;
use crate::adapter::{Adapter, ChunkSink, ProviderSettings, Target, UpstreamRequest};
use crate::chat::ChatRequest;
use crate::sse::SseEvent;
use crate::{AiError, Usage};

pub fn settings() -> ProviderSettings {
    ProviderSettings {
        name: "anthropic".into(),
        api_key: Some("test-provider-key".into()),
        api_version: Some("2023-06-01".into()),
        default_max_tokens: 1024,
        ..ProviderSettings::default()
    }
}

pub fn adapter() -> AnthropicAdapter {
    AnthropicAdapter::new(settings())
}

pub fn target() -> Target<'static> {
    Target {
        upstream_model: "claude-sonnet-4-5",
        client_model: "claude-sonnet",
        created: 1700000000,
        request_id: "test",
    }
}

pub fn chat(request: Value) -> ChatRequest {
    serde_json::from_value(request).unwrap()
}

/// The upstream request for a client request given as JSON.
pub fn translate(request: Value) -> Result<UpstreamRequest, AiError> {
    adapter().chat_request(&chat(request), &target())
}

pub fn body(upstream: &UpstreamRequest) -> Value {
    serde_json::from_slice(&upstream.body).unwrap()
}

/// The translated Messages body for `messages` alone.
pub fn body_for(messages: Value) -> Value {
    body(&translate(json!({ "model": "claude-sonnet", "messages": messages })).unwrap())
}

pub fn event(name: &str, data: Value) -> SseEvent {
    SseEvent { event: Some(name.into()), data: data.to_string() }
}

/// Splits SSE text on blank lines into events (enough for fixtures; the real parser lives in `sse`).
pub fn sse_events(text: &str) -> Vec<SseEvent> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = SseEvent::default();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event.event = Some(name.trim().to_string());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            event.data = data.join("\n");
            (event.event.is_some() || !data.is_empty()).then_some(event)
        })
        .collect()
}

/// The `data:` payloads written to a sink, JSON-decoded (`[DONE]` as a string).
pub fn payloads(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap();
            serde_json::from_str(data).unwrap_or_else(|_| Value::from(data))
        })
        .collect()
}

pub struct StreamRun {
    pub chunks: Vec<Value>,
    /// The first error from `on_event` or `finish`.
    pub result: Result<(), AiError>,
    pub usage: Usage,
}

/// Feeds events to a fresh translator as the gateway would, stopping at the first error.
pub fn run_stream(events: &[SseEvent]) -> StreamRun {
    let adapter = adapter();
    let mut translator = adapter.stream_translator(&target());
    let mut sink = ChunkSink::new(&target());
    let mut result = events.iter().try_for_each(|e| translator.on_event(e, &mut sink));
    if result.is_ok() {
        result = translator.finish(&mut sink);
    }
    StreamRun { chunks: payloads(&sink.bytes), result, usage: translator.usage() }
}

/// Only the deltas of a stream's chunks, for tests that do not care about ids and stamps.
pub fn deltas(chunks: &[Value]) -> Vec<Value> {
    chunks.iter().map(|c| json!({ "delta": c["choices"][0]["delta"], "finish_reason": c["choices"][0]["finish_reason"] })).collect()
}

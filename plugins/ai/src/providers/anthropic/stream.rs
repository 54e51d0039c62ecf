//! Anthropic's named SSE events → OpenAI `chat.completion.chunk`s.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{finish_reason, status_of_error_type, upstream_error, AnthropicUsage, JSON_TOOL};
use crate::adapter::{ChunkSink, StreamTranslator};
use crate::chat::{ChunkChoice, Delta, FinishReason, FunctionCallDelta, ToolCallDelta};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

/// What an Anthropic content block (by its stream index) becomes for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Text,
    /// A client tool call, with its OpenAI index (tool calls only, in the order they started).
    Tool(u32),
    /// The JSON answer tool: its input JSON is streamed as message text.
    JsonAnswer,
    /// Thinking and server-tool blocks, which clients do not receive.
    Hidden,
}

#[derive(Debug, Default)]
pub(super) struct AnthropicStream {
    blocks: BTreeMap<u64, Block>,
    tool_calls: u32,
    role_sent: bool,
    finish_sent: bool,
    stopped: bool,
    usage: AnthropicUsage,
}

impl StreamTranslator for AnthropicStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut ChunkSink) -> Result<(), AiError> {
        if self.stopped || event.data.trim().is_empty() {
            return Ok(());
        }
        let data: EventData<'_> = serde_json::from_str(&event.data).map_err(|e| {
            AiError::BadUpstreamResponse(format!("an Anthropic stream event is not JSON of its shape: {e}"))
        })?;
        // The data's own `type` is authoritative; the `event:` name repeats it.
        let kind = data.kind.as_deref().or(event.event.as_deref()).unwrap_or_default();
        match kind {
            "message_start" => self.message_start(data.message.as_ref(), out),
            "content_block_start" => {
                self.block_start(block_index(&data)?, data.content_block.as_ref(), out)?
            }
            "content_block_delta" => {
                let index = block_index(&data)?;
                self.block_delta(index, &data.delta.unwrap_or_default(), out)?
            }
            "message_delta" => {
                if let Some(usage) = &data.usage {
                    self.usage.update(usage);
                }
                if let Some(reason) = data.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    self.send_finish(Some(reason), out);
                }
            }
            "message_stop" => {
                self.send_finish(None, out);
                self.stopped = true;
            }
            "error" => {
                let field =
                    |name: &str| data.error.as_ref().and_then(|e| e.get(name)).and_then(Value::as_str);
                let message = field("message").unwrap_or("the upstream stream failed").to_string();
                let status = status_of_error_type(field("type"));
                return Err(upstream_error(status, field("type"), message));
            }
            // ping, content_block_stop, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut ChunkSink) -> Result<(), AiError> {
        if self.stopped {
            Ok(())
        } else {
            Err(AiError::TruncatedStream)
        }
    }

    fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    fn ended(&self) -> bool {
        self.stopped
    }
}

impl AnthropicStream {
    fn message_start(&mut self, message: Option<&Value>, out: &mut ChunkSink) {
        let field = |name: &str| message.and_then(|m| m.get(name)).and_then(Value::as_str);
        if let Some(id) = field("id") {
            out.id = id.to_string();
        }
        if let Some(model) = field("model") {
            out.model = model.to_string();
        }
        if let Some(usage) = message.and_then(|m| m.get("usage")) {
            self.usage.update(usage);
        }
        if !self.role_sent {
            self.send(Delta::default(), None, out);
        }
    }

    fn block_start(&mut self, index: u64, block: Option<&Value>, out: &mut ChunkSink) -> Result<(), AiError> {
        if self.blocks.contains_key(&index) {
            // A repeated start must not open a second tool call; the first one stands.
            return Ok(());
        }
        let field = |name: &str| block.and_then(|b| b.get(name)).and_then(Value::as_str);
        match field("type") {
            Some("text") => {
                self.blocks.insert(index, Block::Text);
                if let Some(text) = field("text").filter(|t| !t.is_empty()) {
                    self.send_text(text, out);
                }
            }
            Some("tool_use") if field("name") == Some(JSON_TOOL) => {
                self.blocks.insert(index, Block::JsonAnswer);
            }
            Some("tool_use") => {
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(AiError::BadUpstreamResponse("a tool_use block without id or name".into()));
                };
                let call = self.tool_calls;
                self.tool_calls = call.saturating_add(1);
                self.blocks.insert(index, Block::Tool(call));
                let delta = ToolCallDelta {
                    index: call,
                    id: Some(id.to_string()),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(name.to_string()),
                        arguments: Some(String::new()),
                    }),
                };
                self.send(Delta { tool_calls: Some(vec![delta]), ..Delta::default() }, None, out);
            }
            _ => {
                self.blocks.insert(index, Block::Hidden);
            }
        }
        Ok(())
    }

    fn block_delta(
        &mut self,
        index: u64,
        delta: &EventDelta<'_>,
        out: &mut ChunkSink,
    ) -> Result<(), AiError> {
        match delta.kind.as_deref() {
            // Text needs no block context, so text arriving for a block that never started is still shown.
            Some("text_delta") => {
                if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                    self.send_text(text, out);
                }
            }
            Some("input_json_delta") => {
                let partial = delta.partial_json.as_deref().unwrap_or_default();
                match self.blocks.get(&index).copied() {
                    Some(Block::Tool(call)) => {
                        if !partial.is_empty() {
                            let delta = ToolCallDelta {
                                index: call,
                                function: Some(FunctionCallDelta {
                                    name: None,
                                    arguments: Some(partial.to_string()),
                                }),
                                ..ToolCallDelta::default()
                            };
                            self.send(Delta { tool_calls: Some(vec![delta]), ..Delta::default() }, None, out);
                        }
                    }
                    Some(Block::JsonAnswer) => {
                        if !partial.is_empty() {
                            self.send_text(partial, out);
                        }
                    }
                    Some(Block::Hidden) => {}
                    // Arguments for a call whose id and name never came cannot be given to the client.
                    Some(Block::Text) | None => {
                        return Err(AiError::BadUpstreamResponse(format!(
                            "input_json_delta for content block {index}, which is not a started tool_use block"
                        )));
                    }
                }
            }
            // Reasoning, as OpenAI-compatible servers stream it.
            Some("thinking_delta") => {
                if let Some(text) = delta.thinking.as_deref().filter(|t| !t.is_empty()) {
                    let delta = Delta { reasoning_content: Some(text.to_string()), ..Delta::default() };
                    self.send(delta, None, out);
                }
            }
            // signature_delta, citations_delta, ...
            _ => {}
        }
        Ok(())
    }

    /// One finish chunk per stream: at message_delta's stop_reason, or at message_stop if none came.
    fn send_finish(&mut self, stop_reason: Option<&str>, out: &mut ChunkSink) {
        if self.finish_sent {
            return;
        }
        self.finish_sent = true;
        let reason = finish_reason(stop_reason, self.tool_calls > 0).unwrap_or(FinishReason::Stop);
        self.send(Delta::default(), Some(reason), out);
    }

    /// Writes a chunk; the first of the stream carries the assistant role, whichever event produced it.
    /// A chunk of message text (the role goes on the stream's first chunk).
    fn send_text(&mut self, text: &str, out: &mut ChunkSink) {
        let role = (!self.role_sent).then_some("assistant");
        self.role_sent = true;
        out.text(0, role, text);
    }

    fn send(&mut self, mut delta: Delta, finish_reason: Option<FinishReason>, out: &mut ChunkSink) {
        if !self.role_sent {
            delta.role = Some("assistant".into());
            self.role_sent = true;
        }
        out.chunk(vec![ChunkChoice { index: 0, delta, finish_reason }]);
    }
}

/// What the translator reads of an event's data. The fields of every streamed token (`type`, the delta's
/// text or JSON) borrow from the event; the rarer objects stay JSON values.
#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    index: Option<BlockIndex>,
    #[serde(borrow, default)]
    delta: Option<EventDelta<'a>>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// `delta` of a `content_block_delta` (type and text or partial JSON) or of a `message_delta` (stop reason).
#[derive(Default, Deserialize)]
struct EventDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

fn block_index(data: &EventData<'_>) -> Result<u64, AiError> {
    data.index
        .as_ref()
        .and_then(|index| index.0)
        .ok_or_else(|| AiError::BadUpstreamResponse("a content block event without an index".into()))
}

/// An event's `index`: a whole number, or nothing usable (a string, a fraction, an object...), which the events
/// that need one report. Read without building a JSON value: every delta of a stream carries one.
struct BlockIndex(Option<u64>);

impl<'de> Deserialize<'de> for BlockIndex {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BlockIndexVisitor)
    }
}

struct BlockIndexVisitor;

impl<'de> serde::de::Visitor<'de> for BlockIndexVisitor {
    type Value = BlockIndex;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a content block index")
    }

    fn visit_u64<E>(self, n: u64) -> Result<BlockIndex, E> {
        Ok(BlockIndex(Some(n)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<BlockIndex, E> {
        Ok(BlockIndex(u64::try_from(n).ok()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<BlockIndex, E> {
        Ok(BlockIndex(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<BlockIndex, E> {
        Ok(BlockIndex(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<BlockIndex, E> {
        Ok(BlockIndex(None))
    }

    fn visit_unit<E>(self) -> Result<BlockIndex, E> {
        Ok(BlockIndex(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<BlockIndex, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(BlockIndex(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<BlockIndex, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(BlockIndex(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_a_whole_number_or_nothing_and_never_fails_the_event() {
        let index = |json: &str| {
            let data: EventData<'_> = serde_json::from_str(json).unwrap();
            data.index.and_then(|i| i.0)
        };
        assert_eq!(index(r#"{"type":"content_block_delta","index":3}"#), Some(3));
        assert_eq!(index(r#"{"index":0,"delta":{"type":"text_delta","text":"hi"}}"#), Some(0));
        for odd in ["-1", "1.5", "\"2\"", "true", "null", "[1,[2]]", "{\"a\":{\"b\":1}}"] {
            assert_eq!(index(&format!(r#"{{"index":{odd},"type":"ping"}}"#)), None, "{odd}");
        }
        assert_eq!(index(r#"{"type":"ping"}"#), None);
    }
}

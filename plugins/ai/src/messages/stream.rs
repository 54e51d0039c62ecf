//! OpenAI `chat.completion.chunk`s (what every adapter's stream translator writes) re-encoded as the named
//! events of a Messages stream: `message_start`, then per content block `content_block_start`,
//! `content_block_delta`s and `content_block_stop`, then `message_delta` (stop reason, usage) and
//! `message_stop`. Reasoning becomes a thinking block, text a text block, each tool call a tool_use block
//! whose arguments stream as `input_json_delta`s.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::anthropic_error_json;
use super::response::{message_id, stop_reason, usage_json};
use crate::chat::{Delta, FinishReason, ToolCallDelta};
use crate::{AiError, Usage};

/// What the open content block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    /// A tool call, by its OpenAI index.
    Tool(u32),
}

/// One Messages stream being written. Feed it the OpenAI SSE bytes a `ChunkSink` produced (`encode`), then
/// end it with `finish` or `fail`.
#[derive(Debug)]
pub struct MessagesEncoder {
    id: String,
    model: String,
    started: bool,
    /// The open block: its index and kind.
    open: Option<(u64, Kind)>,
    next_index: u64,
    /// Block index and id of each OpenAI tool call seen, so late argument deltas still reach their block.
    tools: BTreeMap<u32, (u64, String)>,
    finish: Option<FinishReason>,
    called_tools: bool,
    ended: bool,
    out: Vec<u8>,
}

/// An OpenAI chunk read leniently: pass-through providers hand on their upstream's chunks, which may leave
/// out fields or use finish reasons of their own.
#[derive(Deserialize)]
struct LooseChunk {
    #[serde(default)]
    choices: Vec<LooseChoice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct LooseChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

impl MessagesEncoder {
    /// `id` is the stream's chunk id (`chatcmpl-...`), `model` the name the client asked for.
    pub fn new(id: &str, model: &str) -> Self {
        MessagesEncoder {
            id: message_id(id),
            model: model.to_string(),
            started: false,
            open: None,
            next_index: 0,
            tools: BTreeMap::new(),
            finish: None,
            called_tools: false,
            ended: false,
            out: Vec::new(),
        }
    }

    /// Re-encodes whole `data:` events of an OpenAI stream (`data: [DONE]` is left to `finish`).
    pub fn encode(&mut self, openai: &[u8]) {
        for line in openai.split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data: ").or_else(|| line.strip_prefix(b"data:")) else {
                continue;
            };
            if data.trim_ascii() == b"[DONE]" || self.ended {
                continue;
            }
            match serde_json::from_slice::<LooseChunk>(data) {
                Ok(LooseChunk { error: Some(error), .. }) => {
                    let message = error.get("message").and_then(Value::as_str).unwrap_or("upstream error");
                    let status = error.get("code").and_then(Value::as_u64).unwrap_or(500);
                    self.error_event(u16::try_from(status).unwrap_or(500), message);
                }
                Ok(chunk) => self.chunk(chunk),
                Err(e) => self.error_event(502, &format!("an unreadable stream chunk: {e}")),
            }
        }
    }

    fn chunk(&mut self, chunk: LooseChunk) {
        self.start();
        // Anthropic has one answer per request: the first choice is it.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                self.delta(delta);
            }
            if let Some(reason) = choice.finish_reason.as_ref().and_then(Value::as_str) {
                self.finish = Some(match reason {
                    "length" => FinishReason::Length,
                    "tool_calls" => FinishReason::ToolCalls,
                    "function_call" => FinishReason::FunctionCall,
                    "content_filter" => FinishReason::ContentFilter,
                    _ => FinishReason::Stop,
                });
            }
        }
    }

    fn delta(&mut self, delta: Delta) {
        if let Some(thinking) = delta.reasoning_content.filter(|t| !t.is_empty()) {
            let index =
                self.block(Kind::Thinking, || json!({ "type": "thinking", "thinking": "", "signature": "" }));
            self.block_delta(index, json!({ "type": "thinking_delta", "thinking": thinking }));
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            let index = self.block(Kind::Text, || json!({ "type": "text", "text": "" }));
            self.block_delta(index, json!({ "type": "text_delta", "text": text }));
        }
        for call in delta.tool_calls.unwrap_or_default() {
            self.tool_call(call);
        }
    }

    fn tool_call(&mut self, call: ToolCallDelta) {
        let function = call.function.unwrap_or_default();
        let known = self.tools.get(&call.index);
        let index = match (known, call.id) {
            (Some((index, _)), None) => *index,
            // Some servers repeat the id on every delta of a call.
            (Some((index, known_id)), Some(id)) if *known_id == id => *index,
            // A new call (or a new id at a reused index: another call).
            (_, id) => {
                let name = function.name.clone().unwrap_or_default();
                let id = id.unwrap_or_else(|| format!("toolu_{}_{}", self.id, call.index));
                self.called_tools = true;
                let content_block = json!({ "type": "tool_use", "id": id, "name": name, "input": {} });
                let index = self.open_block(Kind::Tool(call.index), content_block);
                self.tools.insert(call.index, (index, id));
                index
            }
        };
        if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
            self.block_delta(index, json!({ "type": "input_json_delta", "partial_json": arguments }));
        }
    }

    /// The open block of this kind, or a new one.
    fn block(&mut self, kind: Kind, start: impl FnOnce() -> Value) -> u64 {
        match self.open {
            Some((index, open)) if open == kind => index,
            _ => self.open_block(kind, start()),
        }
    }

    fn open_block(&mut self, kind: Kind, content_block: Value) -> u64 {
        self.close_block();
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        self.open = Some((index, kind));
        self.event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": index, "content_block": content_block }),
        );
        index
    }

    fn close_block(&mut self) {
        if let Some((index, _)) = self.open.take() {
            self.event("content_block_stop", &json!({ "type": "content_block_stop", "index": index }));
        }
    }

    fn block_delta(&mut self, index: u64, delta: Value) {
        self.event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
        );
    }

    fn start(&mut self) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let message = json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": { "input_tokens": 0, "output_tokens": 0 },
        });
        self.event("message_start", &json!({ "type": "message_start", "message": message }));
    }

    /// The upstream stream completed: closes the open block and writes the stop reason, the usage and
    /// `message_stop`.
    pub fn finish(&mut self, usage: &Usage) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.start();
        self.close_block();
        let delta =
            json!({ "stop_reason": stop_reason(self.finish, self.called_tools), "stop_sequence": null });
        self.event(
            "message_delta",
            &json!({ "type": "message_delta", "delta": delta, "usage": usage_json(usage) }),
        );
        self.event("message_stop", &json!({ "type": "message_stop" }));
    }

    /// The stream failed: an `error` event ends it (after everything already written).
    pub fn fail(&mut self, error: &AiError) {
        if self.ended {
            return;
        }
        self.error_event(error.status(), &error.to_string());
    }

    fn error_event(&mut self, status: u16, message: &str) {
        self.ended = true;
        self.event("error", &anthropic_error_json(status, message));
    }

    /// Whether the stream has been ended (`finish` or an error).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The bytes written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn event(&mut self, name: &str, data: &Value) {
        self.out.extend_from_slice(b"event: ");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\ndata: ");
        self.out.extend_from_slice(&crate::adapter::json_bytes(data));
        self.out.extend_from_slice(b"\n\n");
    }
}

//! The stream translator for upstreams that already send OpenAI chunks: events pass through as they came,
//! except the chunks the gateway owns (usage) or the client must not see (Azure's prompt filter results).
//!
//! When a stream counts as complete: `data: [DONE]` arrived, or, without it, every choice that appeared got a
//! `finish_reason` (some compatible servers close without `[DONE]`; the answer is whole, though the usage
//! chunk that would have followed may be missing). Anything short of that is `TruncatedStream`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::read_error;
use crate::adapter::{ChunkSink, StreamTranslator, Target};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

/// OpenAI puts `usage` last; removing it textually keeps every other byte of the chunk as sent.
const NULL_USAGE_SUFFIX: &str = ",\"usage\":null}";

#[derive(Debug, Default)]
pub(in crate::providers) struct PassThroughStream {
    usage: Usage,
    /// `data: [DONE]` arrived; later events are ignored.
    done: bool,
    /// Each choice index seen, and whether it has finished.
    choices: BTreeMap<u64, bool>,
}

impl PassThroughStream {
    pub(in crate::providers) fn new(_target: &Target<'_>) -> Self {
        PassThroughStream::default()
    }
}

impl StreamTranslator for PassThroughStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut ChunkSink) -> Result<(), AiError> {
        let data = event.data.trim();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            // The gateway writes its own [DONE] after the usage chunk, so this one is not forwarded.
            self.done = true;
            return Ok(());
        }
        let mut parsed: Value = serde_json::from_slice(data.as_bytes())
            .map_err(|e| AiError::BadUpstreamResponse(format!("a stream event is not JSON: {e}")))?;
        let Some(chunk) = parsed.as_object_mut() else {
            return Err(AiError::BadUpstreamResponse("a stream event is not a JSON object".into()));
        };
        if chunk.contains_key("error") || chunk.get("object").and_then(Value::as_str) == Some("error") {
            return Err(read_error(200, data.as_bytes()));
        }
        let usage = chunk.remove("usage");
        if let Some(reported) = usage.as_ref().filter(|u| u.is_object()) {
            self.usage = Usage::from_openai(reported);
        }
        adopt_identity(chunk, out);
        let Some(choices) = chunk.get("choices").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
            // Usage-only chunks belong to the gateway; Azure's prompt-filter chunks to nobody.
            return Ok(());
        };
        if self.track(choices) {
            out.content_chunks = out.content_chunks.saturating_add(1);
        }
        match usage {
            None => out.raw(data),
            Some(Value::Null) => match data.strip_suffix(NULL_USAGE_SUFFIX) {
                Some(head) => out.raw(&format!("{head}}}")),
                None => out.write(&parsed),
            },
            // A choice chunk that also reports usage (Mistral's last chunk): the usage goes to the gateway.
            Some(_) => out.write(&parsed),
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut ChunkSink) -> Result<(), AiError> {
        let all_finished = !self.choices.is_empty() && self.choices.values().all(|finished| *finished);
        if self.done || all_finished {
            Ok(())
        } else {
            Err(AiError::TruncatedStream)
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn ended(&self) -> bool {
        self.done
    }
}

impl PassThroughStream {
    /// Records which choices started and finished; true when the chunk carries text or tool-call deltas.
    fn track(&mut self, choices: &[Value]) -> bool {
        let mut carries_text = false;
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finished = choice.get("finish_reason").is_some_and(|reason| !reason.is_null());
            let entry = self.choices.entry(index).or_insert(false);
            *entry = *entry || finished;
            let delta = choice.get("delta");
            let text =
                delta.and_then(|d| d.get("content")).and_then(Value::as_str).is_some_and(|t| !t.is_empty());
            let calls = delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty());
            carries_text = carries_text || text || calls;
        }
        carries_text
    }
}

/// The gateway's own chunks (the usage chunk) carry the id, model and time the upstream's chunks carried.
fn adopt_identity(chunk: &Map<String, Value>, out: &mut ChunkSink) {
    if let Some(id) = chunk.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
        if out.id != id {
            out.id = id.to_string();
        }
    }
    if let Some(model) = chunk.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) {
        if out.model != model {
            out.model = model.to_string();
        }
    }
    if let Some(created) = chunk.get("created").and_then(Value::as_u64).filter(|c| *c > 0) {
        out.created = created;
    }
}

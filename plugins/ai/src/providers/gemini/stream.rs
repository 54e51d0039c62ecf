//! Gemini's `alt=sse` stream → OpenAI chunks. Every event is a whole `GenerateContentResponse` fragment:
//! no event names, no `[DONE]`; the stream is complete once each candidate has carried a `finishReason`.

use std::collections::BTreeMap;

use super::response::{finish_reason, CallIds, Candidate, GenerateResponse};
use crate::adapter::{ChunkSink, StreamTranslator, Target};
use crate::chat::{ChunkChoice, Delta, FinishReason, FunctionCallDelta, ToolCallDelta};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

#[derive(Debug)]
pub(super) struct GeminiStream {
    request_id: String,
    /// Made on the first event, keyed by its `responseId` so ids match a non-streamed answer's.
    ids: Option<CallIds>,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Usage,
}

#[derive(Debug, Default)]
struct ChoiceState {
    role_sent: bool,
    tool_calls: u32,
    finished: bool,
}

impl ChoiceState {
    /// `"assistant"` on the first delta of a choice only.
    fn role(&mut self) -> Option<String> {
        (!std::mem::replace(&mut self.role_sent, true)).then(|| "assistant".to_string())
    }
}

impl GeminiStream {
    pub fn new(target: &Target<'_>) -> Self {
        GeminiStream {
            request_id: target.request_id.to_string(),
            ids: None,
            choices: BTreeMap::new(),
            usage: Usage::default(),
        }
    }

    fn candidate(&mut self, candidate: &Candidate, position: usize, ids: &mut CallIds, out: &mut ChunkSink) {
        let index = candidate.index_or(position);
        let state = self.choices.entry(index).or_default();
        for part in candidate.parts() {
            let delta = if let Some(thought) = part.thought_text() {
                Delta { role: state.role(), reasoning_content: Some(thought.to_string()), ..Delta::default() }
            } else if let Some(call) = &part.function_call {
                let tool_call = ToolCallDelta {
                    index: state.tool_calls,
                    id: Some(ids.id_for(call)),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.name.clone()),
                        arguments: Some(call.arguments()),
                    }),
                };
                state.tool_calls = state.tool_calls.saturating_add(1);
                Delta { role: state.role(), tool_calls: Some(vec![tool_call]), ..Delta::default() }
            } else if let Some(text) = part.answer_text() {
                out.text(index, state.role().as_deref(), text);
                continue;
            } else {
                continue;
            };
            out.chunk(vec![ChunkChoice { index, delta, finish_reason: None }]);
        }
        if let Some(reason) = &candidate.finish_reason {
            let finish = finish_reason(reason, state.tool_calls > 0);
            state.finished = true;
            let delta = Delta { role: state.role(), ..Delta::default() };
            out.chunk(vec![ChunkChoice { index, delta, finish_reason: Some(finish) }]);
        }
    }
}

impl StreamTranslator for GeminiStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut ChunkSink) -> Result<(), AiError> {
        if event.data.trim().is_empty() {
            return Ok(());
        }
        let response = GenerateResponse::parse(event.data.as_bytes())?;
        if let Some(id) = &response.response_id {
            out.id = format!("chatcmpl-{id}");
        }
        if let Some(model) = &response.model_version {
            out.model = model.clone();
        }
        // Each event repeats the running totals; the last one is the whole request's.
        if let Some(usage) = response.usage() {
            self.usage = usage;
        }
        let mut ids = match self.ids.take() {
            Some(ids) => ids,
            None => CallIds::new(response.response_id.as_deref().unwrap_or(&self.request_id)),
        };
        for (position, candidate) in response.candidates().iter().enumerate() {
            self.candidate(candidate, position, &mut ids, out);
        }
        self.ids = Some(ids);
        // A blocked prompt yields one event with `promptFeedback` and no candidates (see `completion`).
        if response.candidates().is_empty() && response.blocked() {
            let state = self.choices.entry(0).or_default();
            if !state.finished {
                state.finished = true;
                let delta = Delta { role: state.role(), ..Delta::default() };
                out.chunk(vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: Some(FinishReason::ContentFilter),
                }]);
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut ChunkSink) -> Result<(), AiError> {
        if self.ended() {
            Ok(())
        } else {
            Err(AiError::TruncatedStream)
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    /// Every candidate has its `finishReason`; the event that carries the last one carries the final usage.
    fn ended(&self) -> bool {
        !self.choices.is_empty() && self.choices.values().all(|c| c.finished)
    }
}

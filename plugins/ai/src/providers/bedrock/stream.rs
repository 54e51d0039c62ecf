//! ConverseStream events (decoded from the event stream by `EventStreamDecoder`) → OpenAI chunks. The order
//! is `messageStart`, per content block `contentBlockStart` (tool calls only) / `contentBlockDelta` /
//! `contentBlockStop`, then `messageStop` (the stop reason) and `metadata` (usage), the last event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::response::{finish_reason, parse_json, TokenUsage};
use crate::adapter::{ChunkSink, StreamTranslator};
use crate::chat::{ChunkChoice, Delta, FinishReason, FunctionCallDelta, ToolCallDelta};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

#[derive(Debug, Default)]
pub(super) struct BedrockStream {
    /// Content block index → OpenAI tool call index, for the blocks that started as tool calls.
    tool_blocks: BTreeMap<u64, u32>,
    tool_calls: u32,
    role_sent: bool,
    stopped: bool,
    /// `metadata` arrived: nothing follows it.
    ended: bool,
    usage: TokenUsage,
}

impl StreamTranslator for BedrockStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut ChunkSink) -> Result<(), AiError> {
        if self.ended {
            return Ok(());
        }
        let data = event.data.as_bytes();
        match event.event.as_deref().unwrap_or_default() {
            "messageStart" if !self.role_sent => self.send(Delta::default(), None, out),
            "contentBlockStart" => self.block_start(parse_json(data, "contentBlockStart event")?, out)?,
            "contentBlockDelta" => self.block_delta(parse_json(data, "contentBlockDelta event")?, out)?,
            "messageStop" => {
                let stop: MessageStop<'_> = parse_json(data, "messageStop event")?;
                if !self.stopped {
                    self.stopped = true;
                    let reason =
                        finish_reason(stop.stop_reason.as_deref().unwrap_or(""), self.tool_calls > 0);
                    self.send(Delta::default(), Some(reason), out);
                }
            }
            "metadata" => {
                let metadata: Metadata = parse_json(data, "metadata event")?;
                if let Some(usage) = metadata.usage {
                    self.usage = usage;
                }
                self.ended = true;
            }
            // contentBlockStop, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut ChunkSink) -> Result<(), AiError> {
        if self.stopped && self.ended {
            Ok(())
        } else {
            Err(AiError::TruncatedStream)
        }
    }

    fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    fn ended(&self) -> bool {
        self.ended
    }
}

impl BedrockStream {
    fn block_start(&mut self, start: BlockStart<'_>, out: &mut ChunkSink) -> Result<(), AiError> {
        let Some(tool) = start.start.and_then(|s| s.tool_use) else {
            return Ok(());
        };
        let index = block_index(start.content_block_index)?;
        // A repeated start must not open a second tool call; the first one stands.
        if self.tool_blocks.contains_key(&index) {
            return Ok(());
        }
        let call = self.tool_calls;
        self.tool_calls = call.saturating_add(1);
        self.tool_blocks.insert(index, call);
        let delta = ToolCallDelta {
            index: call,
            id: Some(tool.tool_use_id.into_owned()),
            kind: Some("function".into()),
            function: Some(FunctionCallDelta {
                name: Some(tool.name.into_owned()),
                arguments: Some(String::new()),
            }),
        };
        self.send(Delta { tool_calls: Some(vec![delta]), ..Delta::default() }, None, out);
        Ok(())
    }

    fn block_delta(&mut self, block: BlockDelta<'_>, out: &mut ChunkSink) -> Result<(), AiError> {
        let Some(delta) = block.delta else { return Ok(()) };
        if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
            let role = (!self.role_sent).then_some("assistant");
            self.role_sent = true;
            out.text(0, role, &text);
        } else if let Some(input) = delta.tool_use.map(|t| t.input) {
            let index = block_index(block.content_block_index)?;
            // Arguments for a call whose id and name never came cannot be given to the client.
            let call = self.tool_blocks.get(&index).copied().ok_or_else(|| {
                AiError::BadUpstreamResponse(format!(
                    "Bedrock sent tool input for content block {index}, which did not start as a tool call"
                ))
            })?;
            if !input.is_empty() {
                let delta = ToolCallDelta {
                    index: call,
                    function: Some(FunctionCallDelta { name: None, arguments: Some(input.into_owned()) }),
                    ..ToolCallDelta::default()
                };
                self.send(Delta { tool_calls: Some(vec![delta]), ..Delta::default() }, None, out);
            }
        } else if let Some(text) = delta.reasoning_content.and_then(|r| r.text).filter(|t| !t.is_empty()) {
            self.send(Delta { reasoning_content: Some(text.into_owned()), ..Delta::default() }, None, out);
        }
        Ok(())
    }

    /// Writes a chunk; the first of the stream carries the assistant role, whichever event produced it.
    fn send(&mut self, mut delta: Delta, finish_reason: Option<FinishReason>, out: &mut ChunkSink) {
        if !self.role_sent {
            delta.role = Some("assistant".into());
            self.role_sent = true;
        }
        out.chunk(vec![ChunkChoice { index: 0, delta, finish_reason }]);
    }
}

fn block_index(index: Option<u64>) -> Result<u64, AiError> {
    index.ok_or_else(|| AiError::BadUpstreamResponse("a Bedrock content block event without an index".into()))
}

/// What the translator reads of each event; the text of every streamed token borrows from the event.
/// Unknown fields (the `p` padding Bedrock adds to every event) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart<'a> {
    #[serde(default)]
    content_block_index: Option<u64>,
    #[serde(borrow, default)]
    start: Option<Start<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    #[serde(borrow, default)]
    tool_use: Option<ToolUseStart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart<'a> {
    #[serde(borrow)]
    tool_use_id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta<'a> {
    #[serde(default)]
    content_block_index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<DeltaBody<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaBody<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_use: Option<ToolUseDelta<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<ReasoningDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolUseDelta<'a> {
    #[serde(borrow, default)]
    input: Cow<'a, str>,
}

/// `{"text"}` as reasoning streams, or `{"signature"}` / `{"redactedContent"}`, which clients do not get.
#[derive(Deserialize)]
struct ReasoningDelta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop<'a> {
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: Option<TokenUsage>,
}

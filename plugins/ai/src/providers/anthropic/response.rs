//! Anthropic `message` response → OpenAI `chat.completion`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{finish_reason, AnthropicUsage, JSON_TOOL};
use crate::adapter::{Target, Translated};
use crate::chat::{AssistantMessage, ChatCompletion, Choice, FunctionCall, ToolCall};
use crate::AiError;

#[derive(Deserialize)]
struct MessageResponse {
    id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Value,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default = "empty_object")]
        input: Value,
    },
    /// Reasoning, given to OpenAI clients as `reasoning_content`.
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    /// `redacted_thinking` (encrypted), server tool blocks, ...: nothing an OpenAI client can receive.
    #[serde(other)]
    Other,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

pub(super) fn chat_completion(body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
    let message: MessageResponse = serde_json::from_slice(body)
        .map_err(|e| AiError::BadUpstreamResponse(format!("not an Anthropic message: {e}")))?;

    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in message.content {
        match block {
            Block::Text { text: part } => text.push_str(&part),
            Block::Thinking { thinking } => reasoning.push_str(&thinking),
            Block::ToolUse { name, input, .. } if name == JSON_TOOL => text.push_str(&input.to_string()),
            Block::ToolUse { id, name, input } => calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall { name, arguments: input.to_string() },
            }),
            Block::Other => {}
        }
    }

    let mut usage = AnthropicUsage::default();
    usage.update(&message.usage);
    let usage = usage.to_usage();
    let finish = finish_reason(message.stop_reason.as_deref(), !calls.is_empty());
    let completion = ChatCompletion {
        id: message.id,
        object: "chat.completion".into(),
        created: target.created,
        model: message.model.unwrap_or_else(|| target.upstream_model.to_string()),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                // OpenAI sends null content for an answer that is only tool calls.
                content: (!text.is_empty() || calls.is_empty()).then_some(text),
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                tool_calls: (!calls.is_empty()).then_some(calls),
            },
            finish_reason: finish,
        }],
        usage: Some(usage.to_openai()),
    };
    let body = serde_json::to_vec(&completion).map_err(|e| AiError::BadUpstreamResponse(e.to_string()))?;
    Ok(Translated { body, usage })
}

//! Bedrock Converse response → OpenAI `chat.completion`; the usage and stop reasons streams share.

use serde::Deserialize;
use serde_json::Value;

use crate::adapter::{Target, Translated};
use crate::chat::{AssistantMessage, ChatCompletion, Choice, FinishReason, FunctionCall, ToolCall};
use crate::{AiError, Usage};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    #[serde(default)]
    output: Option<Output>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct Output {
    #[serde(default)]
    message: Option<OutputMessage>,
}

#[derive(Debug, Default, Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<ContentBlock>,
}

/// One block of the answer; kinds other than these (citations, documents, guard content) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUse>,
    #[serde(default)]
    reasoning_content: Option<ReasoningContent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Option<Value>,
}

/// Reasoning as text (its `signature` only matters when it is sent back, which OpenAI clients cannot do);
/// `redactedContent` is encrypted and not shown.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningContent {
    #[serde(default)]
    reasoning_text: Option<ReasoningText>,
}

#[derive(Debug, Default, Deserialize)]
struct ReasoningText {
    #[serde(default)]
    text: String,
}

/// Converse's `usage`. `inputTokens` leaves out the tokens read from and written to the prompt cache, which
/// OpenAI's `prompt_tokens` includes, so the three are summed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl TokenUsage {
    /// Reasoning tokens are billed inside `outputTokens` and not reported apart, so reasoning stays 0.
    pub fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self
                .input_tokens
                .saturating_add(self.cache_read_input_tokens)
                .saturating_add(self.cache_write_input_tokens),
            output_tokens: self.output_tokens,
            cached_input_tokens: self.cache_read_input_tokens,
            reasoning_tokens: 0,
        }
    }
}

/// OpenAI's finish reason for a Converse `stopReason`. `tool_use` without a call the client can see is a
/// plain stop.
pub(super) fn finish_reason(stop_reason: &str, has_tool_calls: bool) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" if has_tool_calls => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, and reasons added after this was written.
        _ => FinishReason::Stop,
    }
}

pub(super) fn parse_json<'a, T: Deserialize<'a>>(data: &'a [u8], what: &str) -> Result<T, AiError> {
    serde_json::from_slice(data).map_err(|e| {
        let path = tollgate_core::json_error_path(data, &e);
        AiError::BadUpstreamResponse(format!("Bedrock {what} at `{path}`: {e}"))
    })
}

pub(super) fn completion(body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
    let response: ConverseResponse = parse_json(body, "response")?;
    let message = response
        .output
        .and_then(|o| o.message)
        .ok_or_else(|| AiError::BadUpstreamResponse("Bedrock returned no output message".into()))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in message.content {
        if let Some(t) = block.text {
            text.push_str(&t);
        } else if let Some(call) = block.tool_use {
            let arguments = call.input.as_ref().map_or_else(|| "{}".to_string(), Value::to_string);
            calls.push(ToolCall {
                id: call.tool_use_id,
                kind: "function".into(),
                function: FunctionCall { name: call.name, arguments },
            });
        } else if let Some(thought) = block.reasoning_content.and_then(|r| r.reasoning_text) {
            reasoning.push_str(&thought.text);
        }
    }
    let usage = response.usage.unwrap_or_default().to_usage();
    let finish = response.stop_reason.as_deref().map(|r| finish_reason(r, !calls.is_empty()));
    let completion = ChatCompletion {
        id: format!("chatcmpl-{}", target.request_id),
        object: "chat.completion".into(),
        created: target.created,
        model: target.upstream_model.to_string(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                // OpenAI sends `content: null` when the model only called tools.
                content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                tool_calls: (!calls.is_empty()).then_some(calls),
            },
            finish_reason: finish,
        }],
        usage: Some(usage.to_openai()),
    };
    let body = serde_json::to_vec(&completion)
        .map_err(|e| AiError::BadUpstreamResponse(format!("could not encode the completion: {e}")))?;
    Ok(Translated { body, usage })
}

//! An OpenAI `chat.completion` (what every adapter answers with) as a Messages answer.

use serde_json::{json, Map, Value};

use crate::chat::{ChatCompletion, FinishReason};
use crate::{AiError, Usage};

/// Anthropic's `stop_reason` for an OpenAI finish reason, and whether the turn called tools.
pub(crate) fn stop_reason(finish: Option<FinishReason>, called_tools: bool) -> &'static str {
    match finish {
        // Some providers finish a turn of tool calls with a plain stop.
        Some(FinishReason::Stop) | None if called_tools => "tool_use",
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls | FinishReason::FunctionCall) => "tool_use",
        Some(FinishReason::ContentFilter) => "refusal",
        Some(FinishReason::Stop) | None => "end_turn",
    }
}

/// Anthropic's `usage`: its `input_tokens` leaves out cache reads, which OpenAI's `prompt_tokens` counts.
pub(crate) fn usage_json(usage: &Usage) -> Value {
    let mut out = json!({
        "input_tokens": usage.input_tokens.saturating_sub(usage.cached_input_tokens),
        "output_tokens": usage.output_tokens,
    });
    if let (true, Some(fields)) = (usage.cached_input_tokens > 0, out.as_object_mut()) {
        fields.insert("cache_read_input_tokens".into(), json!(usage.cached_input_tokens));
    }
    out
}

/// A message id in Anthropic's style, from the completion's.
pub(crate) fn message_id(id: &str) -> String {
    let bare = id.strip_prefix("chatcmpl-").unwrap_or(id);
    format!("msg_{bare}")
}

/// A tool call's `arguments` text as the `input` object Anthropic clients expect. Arguments that are not a
/// JSON object (a model's broken output) are kept whole under `arguments` rather than lost.
pub(crate) fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(_) | Err(_) if arguments.trim().is_empty() => Value::Object(Map::new()),
        Ok(_) | Err(_) => json!({ "arguments": arguments }),
    }
}

/// The Messages answer for a translated completion: its first choice (Anthropic has no `n`), reasoning
/// first as a thinking block, then text, then tool calls.
pub fn message_from_completion(body: &[u8], usage: &Usage) -> Result<Value, AiError> {
    let completion: ChatCompletion = serde_json::from_slice(body)
        .map_err(|e| AiError::BadUpstreamResponse(format!("could not read the translated answer: {e}")))?;
    let choice = completion.choices.into_iter().next();
    let mut content = Vec::new();
    let mut finish = None;
    let mut calls = false;
    if let Some(choice) = choice {
        finish = choice.finish_reason;
        let message = choice.message;
        if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
            content.push(json!({ "type": "thinking", "thinking": reasoning, "signature": "" }));
        }
        if let Some(text) = message.content.filter(|t| !t.is_empty()) {
            content.push(json!({ "type": "text", "text": text }));
        }
        for call in message.tool_calls.unwrap_or_default() {
            calls = true;
            content.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": tool_input(&call.function.arguments),
            }));
        }
    }
    Ok(json!({
        "id": message_id(&completion.id),
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": stop_reason(finish, calls),
        "stop_sequence": null,
        "usage": usage_json(usage),
    }))
}

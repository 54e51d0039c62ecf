//! Anthropic's Messages API (`POST /v1/messages`): requests, responses, SSE streams and errors translated
//! to and from OpenAI's Chat Completions shapes.

mod request;
mod response;
mod stream;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod testing;

use serde_json::Value;

use crate::adapter::{
    client_status, fallback_message, json_bytes, kind_for, Adapter, ProviderSettings, StreamTranslator,
    Target, Translated, UpstreamRequest,
};
use crate::chat::{ChatRequest, FinishReason};
use crate::{AiError, Usage};

/// The version header sent when the config names none: the one the Messages API is documented against.
const DEFAULT_API_VERSION: &str = "2023-06-01";

/// The tool that carries a `response_format` answer. Anthropic's Messages API has no JSON mode, so a JSON
/// answer is requested as a forced call of this tool (its `input_schema` is the client's schema) and the
/// call's input is handed back to the client as the message text. The name is reserved: a client tool may
/// not use it, so a `tool_use` block with this name can only be the JSON answer.
const JSON_TOOL: &str = "tollgate_json_response";

#[derive(Debug)]
pub struct AnthropicAdapter {
    settings: ProviderSettings,
}

impl AnthropicAdapter {
    pub fn new(settings: ProviderSettings) -> Self {
        AnthropicAdapter { settings }
    }

    /// A Messages API request from an Anthropic-speaking client, sent to Anthropic as it is: only the model
    /// becomes the upstream's name and the credential the provider's. The client's `anthropic-version`
    /// (and `anthropic-beta`) headers go along untouched; without one, the configured or default version
    /// is sent. `endpoint` is `/v1/messages` or `/v1/messages/count_tokens`.
    pub fn native_request(
        settings: &ProviderSettings,
        mut body: Value,
        target: &Target<'_>,
        endpoint: &str,
        client_sent_version: bool,
    ) -> UpstreamRequest {
        if let Some(object) = body.as_object_mut() {
            object.insert("model".into(), Value::String(target.upstream_model.to_string()));
        }
        let mut headers = Vec::with_capacity(3);
        if let Some(key) = &settings.api_key {
            headers.push(("x-api-key".to_string(), key.clone()));
        }
        if !client_sent_version {
            let version = settings.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION);
            headers.push(("anthropic-version".to_string(), version.to_string()));
        }
        headers.push(("content-type".to_string(), "application/json".to_string()));
        UpstreamRequest {
            path: format!("{}{endpoint}", settings.base_path),
            headers,
            body: json_bytes(&body),
            dropped: Vec::new(),
        }
    }
}

impl Adapter for AnthropicAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let translated =
            request::messages_body(req, target.upstream_model, self.settings.default_max_tokens)?;
        let mut headers = Vec::with_capacity(3);
        if let Some(key) = &self.settings.api_key {
            headers.push(("x-api-key".to_string(), key.clone()));
        }
        let version = self.settings.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION);
        headers.push(("anthropic-version".to_string(), version.to_string()));
        headers.push(("content-type".to_string(), "application/json".to_string()));
        Ok(UpstreamRequest {
            path: format!("{}/v1/messages", self.settings.base_path),
            headers,
            body: json_bytes(&translated),
            dropped: translated.dropped,
        })
    }

    fn chat_response(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
        response::chat_completion(body, target)
    }

    fn stream_translator(&self, _target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(stream::AnthropicStream::default())
    }

    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
        let message = field("message").map(str::to_string).unwrap_or_else(|| fallback_message(status, body));
        upstream_error(status, field("type"), message)
    }
}

/// The client-facing error for an Anthropic error of this HTTP status and `error.type`. The Anthropic type
/// is kept as `code` so clients can still tell `overloaded_error` from `api_error`.
fn upstream_error(status: u16, anthropic_type: Option<&str>, message: String) -> AiError {
    // 529 is Anthropic's "overloaded"; 503 is the status OpenAI clients know to back off and retry on.
    let overloaded = status == 529 || anthropic_type == Some("overloaded_error");
    let status = if overloaded { 503 } else { client_status(status) };
    let kind = match anthropic_type {
        Some("invalid_request_error" | "not_found_error" | "request_too_large") => {
            "invalid_request_error".into()
        }
        Some("authentication_error") => "authentication_error".into(),
        Some("permission_error") => "permission_error".into(),
        Some("rate_limit_error") => "rate_limit_error".into(),
        _ => kind_for(status),
    };
    let code = match anthropic_type {
        Some(t) => Some(t.to_string()),
        None if overloaded => Some("overloaded_error".to_string()),
        None => None,
    };
    AiError::Upstream { status, kind, code, message }
}

/// The HTTP status Anthropic uses for an error type, for errors that arrive inside a 200 stream.
fn status_of_error_type(anthropic_type: Option<&str>) -> u16 {
    match anthropic_type {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("rate_limit_error") => 429,
        Some("overloaded_error") => 529,
        _ => 500,
    }
}

/// OpenAI's finish reason for an Anthropic `stop_reason`. `tool_use` caused only by the JSON answer tool
/// is a plain stop to the client, who asked for JSON, not for tool calls.
fn finish_reason(stop_reason: Option<&str>, has_tool_calls: bool) -> Option<FinishReason> {
    Some(match stop_reason? {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" if has_tool_calls => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn, and reasons added after this was written.
        _ => FinishReason::Stop,
    })
}

/// Anthropic's token counts. Its `input_tokens` excludes cache reads and writes, which OpenAI's
/// `prompt_tokens` includes, so the three are summed for the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AnthropicUsage {
    input: u64,
    cache_read: u64,
    cache_creation: u64,
    output: u64,
}

impl AnthropicUsage {
    /// Overwrites the counts `usage` names; streams report them cumulatively, some in each event.
    fn update(&mut self, usage: &Value) {
        let read = |name: &str, slot: &mut u64| {
            if let Some(n) = usage.get(name).and_then(Value::as_u64) {
                *slot = n;
            }
        };
        read("input_tokens", &mut self.input);
        read("cache_read_input_tokens", &mut self.cache_read);
        read("cache_creation_input_tokens", &mut self.cache_creation);
        read("output_tokens", &mut self.output);
    }

    /// Thinking tokens are billed inside `output_tokens` and not reported apart, so reasoning stays 0.
    fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self.input.saturating_add(self.cache_read).saturating_add(self.cache_creation),
            output_tokens: self.output,
            cached_input_tokens: self.cache_read,
            reasoning_tokens: 0,
        }
    }
}

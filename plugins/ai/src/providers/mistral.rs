//! Mistral (`api.mistral.ai/v1`): OpenAI's wire format with its own names for a few fields, a stricter
//! schema (unknown fields are a 422, so they are dropped and reported) and 9-character tool call ids.
//! Responses and streams are OpenAI-shaped; the stream reports usage on its last chunk unasked.

mod messages;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::openai_wire::{
    bearer, chat_body, embeddings_body, json_headers, read_error, read_response, rename_field, to_bytes,
    Body, PassThroughStream,
};
use crate::adapter::{
    Adapter, EmbeddingsRequest, ProviderSettings, StreamTranslator, Target, Translated, UpstreamRequest,
};
use crate::chat::ChatRequest;
use crate::AiError;

/// The chat request fields Mistral's API reference lists (after renaming).
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "stream",
    "stop",
    "random_seed",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "prediction",
    "parallel_tool_calls",
    "prompt_mode",
    "safe_prompt",
];

/// The embeddings request fields Mistral's API reference lists (after renaming).
const EMBEDDINGS_FIELDS: &[&str] = &["model", "input", "encoding_format", "output_dimension", "output_dtype"];

#[derive(Debug)]
pub struct MistralAdapter {
    settings: ProviderSettings,
}

impl MistralAdapter {
    pub fn new(settings: ProviderSettings) -> Self {
        MistralAdapter { settings }
    }

    fn upstream(&self, endpoint: &str, body: Body, dropped: Vec<String>) -> UpstreamRequest {
        UpstreamRequest {
            path: format!("{}/{endpoint}", self.settings.base_path),
            headers: json_headers(bearer(self.settings.api_key.as_deref())),
            body: to_bytes(body),
            dropped,
        }
    }
}

impl Adapter for MistralAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let mut body = chat_body(req)?;
        body.insert("model".into(), target.upstream_model.into());
        rename_field(&mut body, "max_completion_tokens", "max_tokens");
        rename_field(&mut body, "seed", "random_seed");
        if body.get("tool_choice").and_then(Value::as_str) == Some("required") {
            body.insert("tool_choice".into(), "any".into());
        }
        // Mistral's last stream chunk carries usage unasked; the option itself is not in its schema, and
        // the gateway still honours it for the client, so it is not reported as dropped.
        body.remove("stream_options");
        let mut dropped = keep_only(&mut body, CHAT_FIELDS);
        messages::adapt(&mut body, &mut dropped);
        Ok(self.upstream("chat/completions", body, dropped))
    }

    fn chat_response(&self, body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        read_response(body)
    }

    fn stream_translator(&self, target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(PassThroughStream::new(target))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, AiError> {
        let mut body = embeddings_body(req)?;
        body.insert("model".into(), target.upstream_model.into());
        rename_field(&mut body, "dimensions", "output_dimension");
        let dropped = keep_only(&mut body, EMBEDDINGS_FIELDS);
        Ok(self.upstream("embeddings", body, dropped))
    }

    fn embeddings_response(&self, body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        read_response(body)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        read_error(status, body)
    }
}

/// Removes every field not in `allowed`, returning their names (in the body's sorted order).
fn keep_only(body: &mut Body, allowed: &[&str]) -> Vec<String> {
    let dropped: Vec<String> = body.keys().filter(|key| !allowed.contains(&key.as_str())).cloned().collect();
    for key in &dropped {
        body.remove(key);
    }
    dropped
}

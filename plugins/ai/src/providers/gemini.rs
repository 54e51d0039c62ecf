//! Google Gemini (`generativelanguage.googleapis.com`, API `v1beta`): chat through `generateContent` and
//! `streamGenerateContent?alt=sse`, embeddings through `batchEmbedContents`, errors in Google's RPC shape.

mod embeddings;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod stream_tests;

use serde_json::Value;

use crate::adapter::{
    client_status, fallback_message, json_bytes, kind_for, Adapter, EmbeddingsRequest, ProviderSettings,
    StreamTranslator, Target, Translated, UpstreamRequest,
};
use crate::chat::ChatRequest;
use crate::AiError;

#[derive(Debug)]
pub struct GeminiAdapter {
    settings: ProviderSettings,
}

impl GeminiAdapter {
    pub fn new(settings: ProviderSettings) -> Self {
        GeminiAdapter { settings }
    }

    /// `POST {base}/v1beta/models/{model}:{method}` with the key in a header: a key in the URL would end up
    /// in access logs along the way.
    fn upstream(
        &self,
        model: &str,
        method: &str,
        body: &Value,
        dropped: Vec<String>,
    ) -> Result<UpstreamRequest, AiError> {
        check_model_name(model)?;
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(key) = &self.settings.api_key {
            headers.push(("x-goog-api-key".to_string(), key.clone()));
        }
        Ok(UpstreamRequest {
            path: format!("{}/v1beta/models/{model}:{method}", self.settings.base_path),
            headers,
            body: json_bytes(&body),
            dropped,
        })
    }
}

impl Adapter for GeminiAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let (body, dropped) = request::chat_body(req)?;
        let method = if req.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        self.upstream(target.upstream_model, method, &body, dropped)
    }

    fn chat_response(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
        response::completion(body, target)
    }

    fn stream_translator(&self, target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(stream::GeminiStream::new(target))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, AiError> {
        let (body, dropped) = embeddings::request_body(req, target.upstream_model)?;
        self.upstream(target.upstream_model, "batchEmbedContents", &body, dropped)
    }

    fn embeddings_response(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
        embeddings::response(body, target, false)
    }

    fn embeddings_response_for(
        &self,
        req: &EmbeddingsRequest,
        body: &[u8],
        target: &Target<'_>,
    ) -> Result<Translated, AiError> {
        embeddings::response(body, target, embeddings::wants_base64(req))
    }

    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        google_error(status, body)
    }
}

/// The model name becomes a URL path segment; a name that would change the path (another segment, a query,
/// a fragment, an escape, or `:` which selects the RPC method) is refused rather than sent.
fn check_model_name(model: &str) -> Result<(), AiError> {
    let bad = |c: char| matches!(c, '/' | '?' | '#' | '%' | ':') || c.is_whitespace() || c.is_control();
    if model.is_empty() || model.chars().any(bad) {
        return Err(AiError::invalid("model", format!("`{model}` is not a valid Gemini model name")));
    }
    Ok(())
}

/// Reads Google's `{"error":{"code","message","status"}}` into the client's error: the provider's status
/// (5xx become 502), OpenAI's `type` for that status, and the RPC status name lowercased as `code`.
fn google_error(status: u16, body: &[u8]) -> AiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // Without `alt=sse` the streaming endpoint answers with a JSON array of responses, errors included.
    let root = match parsed {
        Some(Value::Array(items)) => items.into_iter().next(),
        other => other,
    };
    let error = root.as_ref().and_then(|v| v.get("error"));
    let text = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    let message = text("message")
        .filter(|m| !m.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| fallback_message(status, body));
    AiError::Upstream {
        status: client_status(status),
        kind: kind_for(status),
        code: text("status").map(str::to_ascii_lowercase),
        message,
    }
}

/// An `{"error":{...}}` object inside a 2xx body or an SSE event: the status comes from its `code`.
fn embedded_error(value: &Value, raw: &[u8]) -> Option<AiError> {
    let error = value.get("error")?;
    let status = error.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(500);
    Some(google_error(status, raw))
}

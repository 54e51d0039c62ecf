//! Azure OpenAI: OpenAI's wire format, addressed by deployment (`/openai/deployments/{name}/...`) and
//! `api-version`, authenticated with an `api-key` header. Azure adds content-filter annotations, which pass
//! through, and a content-filter error, which clients get as a 400 with code `content_filter`.

#[cfg(test)]
mod tests;

use serde_json::Value;

use super::openai_wire::{
    chat_body, embeddings_body, json_headers, read_error, read_response, request_stream_usage, to_bytes,
    Body, PassThroughStream,
};
use crate::adapter::{
    Adapter, EmbeddingsRequest, ProviderSettings, StreamTranslator, Target, Translated, UpstreamRequest,
};
use crate::chat::ChatRequest;
use crate::AiError;

/// The GA data-plane version used when the config names none.
const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The first API versions that accept `stream_options` (2024-09-01-preview, then GA 2024-10-21); older
/// ones reject the request, so their streams go without usage rather than fail.
const FIRST_STREAM_USAGE_VERSION: &str = "2024-09-01";

#[derive(Debug)]
pub struct AzureAdapter {
    settings: ProviderSettings,
}

impl AzureAdapter {
    pub fn new(settings: ProviderSettings) -> Self {
        AzureAdapter { settings }
    }

    fn api_version(&self) -> &str {
        self.settings.api_version.as_deref().filter(|v| !v.is_empty()).unwrap_or(DEFAULT_API_VERSION)
    }

    /// The deployment serving `model`: the configured mapping, else a deployment named like the model.
    fn deployment<'a>(&'a self, model: &'a str) -> Result<&'a str, AiError> {
        let name = self.settings.deployments.get(model).map_or(model, String::as_str);
        // The name becomes a path segment; these characters would escape or re-route it.
        let unsafe_char =
            |c: char| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_whitespace() || c.is_control();
        if name.is_empty() || name == "." || name == ".." || name.chars().any(unsafe_char) {
            return Err(AiError::invalid(
                "model",
                format!("`{model}` does not name a usable Azure OpenAI deployment"),
            ));
        }
        Ok(name)
    }

    fn upstream(&self, model: &str, endpoint: &str, mut body: Body) -> Result<UpstreamRequest, AiError> {
        let deployment = self.deployment(model)?;
        // Azure takes the model from the deployment; the body's is not part of its API.
        body.remove("model");
        let credential = self.settings.api_key.clone().map(|key| ("api-key", key));
        Ok(UpstreamRequest {
            path: format!(
                "{}/openai/deployments/{deployment}/{endpoint}?api-version={}",
                self.settings.base_path,
                self.api_version()
            ),
            headers: json_headers(credential),
            body: to_bytes(body),
            dropped: Vec::new(),
        })
    }
}

impl Adapter for AzureAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let mut body = chat_body(req)?;
        if self.api_version() >= FIRST_STREAM_USAGE_VERSION {
            request_stream_usage(&mut body);
        }
        self.upstream(target.upstream_model, "chat/completions", body)
    }

    fn chat_response(&self, body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        read_response(body)
    }

    /// Azure's first chunk (empty `choices`, `prompt_filter_results`) is swallowed like a usage chunk.
    fn stream_translator(&self, target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(PassThroughStream::new(target))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, AiError> {
        self.upstream(target.upstream_model, "embeddings", embeddings_body(req)?)
    }

    fn embeddings_response(&self, body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        read_response(body)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        let error = read_error(status, body);
        if !is_content_filter(body) {
            return error;
        }
        // The prompt, not the service, is at fault: a client error whatever status Azure chose.
        let message = match error {
            AiError::Upstream { message, .. } => message,
            other => other.to_string(),
        };
        AiError::Upstream {
            status: 400,
            kind: "invalid_request_error".into(),
            code: Some("content_filter".into()),
            message,
        }
    }
}

/// `{"error":{"code":"content_filter",...,"innererror":{"code":"ResponsibleAIPolicyViolation",...}}}`.
fn is_content_filter(body: &[u8]) -> bool {
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let code = parsed.pointer("/error/code").and_then(Value::as_str);
    let inner = parsed.pointer("/error/innererror/code").and_then(Value::as_str);
    code == Some("content_filter") || inner == Some("ResponsibleAIPolicyViolation")
}

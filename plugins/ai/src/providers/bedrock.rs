//! Amazon Bedrock's Converse API (`POST /model/{modelId}/converse`, `/converse-stream`): one request shape
//! for every Bedrock model, signed with SigV4 from static credentials; streams come as AWS binary event
//! streams rather than SSE.

mod event_stream;
mod request;
mod response;
mod sigv4;
mod stream;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod event_stream_tests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod stream_tests;

pub use event_stream::{encode as event_stream_encode, EventStreamDecoder};
pub use sigv4::AwsCredentials;

use serde_json::Value;

use crate::adapter::{
    client_status, fallback_message, json_bytes, kind_for, Adapter, ProviderSettings, StreamTranslator,
    Target, Translated, UpstreamRequest,
};
use crate::chat::ChatRequest;
use crate::sse::EventDecoder;
use crate::AiError;

/// The SigV4 service name of `bedrock-runtime`.
const SERVICE: &str = "bedrock";

#[derive(Debug)]
pub struct BedrockAdapter {
    settings: ProviderSettings,
}

impl BedrockAdapter {
    pub fn new(settings: ProviderSettings) -> Self {
        BedrockAdapter { settings }
    }

    /// The headers of a request with this path and body: its content type and, with credentials, its
    /// SigV4 signature over them and `host` (the gateway sends `:authority`, which is the host it signed).
    fn headers(&self, path: &str, body: &[u8], created: u64) -> Vec<(String, String)> {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        let Some(credentials) = &self.settings.aws else {
            return headers;
        };
        let date = sigv4::amz_date(created);
        let payload = sigv4::sha256_hex(body);
        let mut signed: Vec<(&str, &str)> = vec![
            ("host", self.settings.authority.as_str()),
            ("x-amz-date", &date),
            ("x-amz-content-sha256", &payload),
            ("content-type", "application/json"),
        ];
        if let Some(token) = &credentials.session_token {
            signed.push(("x-amz-security-token", token));
        }
        let input = sigv4::SigningInput {
            method: "POST",
            path,
            query: "",
            headers: &signed,
            payload_sha256: &payload,
        };
        let authorization = sigv4::authorization(credentials, SERVICE, &date, &input);
        headers.push(("x-amz-date".to_string(), date.clone()));
        headers.push(("x-amz-content-sha256".to_string(), payload.clone()));
        if let Some(token) = &credentials.session_token {
            headers.push(("x-amz-security-token".to_string(), token.clone()));
        }
        headers.push(("authorization".to_string(), authorization));
        headers
    }
}

impl Adapter for BedrockAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let model = target.upstream_model;
        if model.is_empty() {
            return Err(AiError::invalid("model", "a Bedrock model id must not be empty"));
        }
        let (body, dropped) = request::converse_body(req)?;
        let body = json_bytes(&body);
        let method = if req.stream { "converse-stream" } else { "converse" };
        let path = format!("{}/model/{}/{method}", self.settings.base_path, sigv4::encode_segment(model));
        let headers = self.headers(&path, &body, target.created);
        Ok(UpstreamRequest { path, headers, body, dropped })
    }

    fn chat_response(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
        response::completion(body, target)
    }

    fn stream_translator(&self, _target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(stream::BedrockStream::default())
    }

    fn stream_decoder(&self, max_event_bytes: usize) -> Box<dyn EventDecoder> {
        Box::new(EventStreamDecoder::new(max_event_bytes))
    }

    /// Bedrock answers errors with `{"message": ...}` and names the exception in the `x-amzn-ErrorType`
    /// header, which adapters do not see; a `__type` or `code` in the body is used when there is one.
    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str);
        let message = field("message")
            .or_else(|| field("Message"))
            .filter(|m| !m.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| fallback_message(status, body));
        let code = field("__type").or_else(|| field("code")).map(exception_code);
        AiError::Upstream { status: client_status(status), kind: kind_for(status), code, message }
    }
}

/// The error an `exception` frame of a stream carries: its `:exception-type` (`throttlingException`) gives
/// the status Bedrock documents for it and the code (`throttling_exception`), its payload the message.
pub(super) fn exception_error(exception_type: &str, payload: &str) -> AiError {
    let code = exception_code(exception_type);
    let status = match code.as_str() {
        "validation_exception" | "service_quota_exceeded_exception" => 400,
        "access_denied_exception" => 403,
        "resource_not_found_exception" => 404,
        "model_timeout_exception" => 408,
        "model_stream_error_exception" | "model_error_exception" => 424,
        "throttling_exception" => 429,
        "service_unavailable_exception" => 503,
        _ => 500,
    };
    let message = serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("message").or_else(|| v.get("Message")).and_then(Value::as_str).map(str::to_string)
        })
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("the Bedrock stream failed with {exception_type}"));
    AiError::Upstream { status: client_status(status), kind: kind_for(status), code: Some(code), message }
}

/// `ThrottlingException`, `throttlingException` or `com.amazon...#ThrottlingException:http://...` →
/// `throttling_exception`.
fn exception_code(name: &str) -> String {
    let name = name.rsplit('#').next().unwrap_or(name);
    let name = name.split(':').next().unwrap_or(name);
    let mut code = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            code.push('_');
        }
        code.push(c.to_ascii_lowercase());
    }
    code
}

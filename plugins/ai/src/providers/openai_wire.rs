//! OpenAI's Chat Completions wire format as upstreams speak it: OpenAI itself, Azure OpenAI, Mistral and the
//! OpenAI-compatible servers. The client's request already is this format, so adapters edit its JSON object
//! (rename a field, drop another) instead of rebuilding it; responses and streams pass through as bytes.

mod stream;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tests;

pub(super) use stream::PassThroughStream;

use serde_json::{Map, Value};

use crate::adapter::{
    client_status, fallback_message, kind_for, openai_style_error, EmbeddingsRequest, Translated,
};
use crate::chat::ChatRequest;
use crate::{AiError, Usage};

/// A request body being prepared for one upstream. Without serde_json's `preserve_order` the keys serialise
/// sorted, which gives upstreams (and fixtures) one stable order whatever order the client used.
pub(super) type Body = Map<String, Value>;

/// The client's chat request as a JSON object, `extra` fields included.
pub(super) fn chat_body(req: &ChatRequest) -> Result<Body, AiError> {
    into_object(serde_json::to_value(req))
}

/// The client's embeddings request as a JSON object, `extra` fields included.
pub(super) fn embeddings_body(req: &EmbeddingsRequest) -> Result<Body, AiError> {
    into_object(serde_json::to_value(req))
}

fn into_object(value: Result<Value, serde_json::Error>) -> Result<Body, AiError> {
    match value {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AiError::InvalidRequest { param: None, message: "the request is not a JSON object".into() }),
    }
}

/// Streams always ask for the final usage chunk: budgets settle from it. The translator swallows that chunk
/// and the gateway writes its own only for clients that asked, so clients see OpenAI's behaviour either way.
pub(super) fn request_stream_usage(body: &mut Body) {
    if body.get("stream") != Some(&Value::Bool(true)) {
        return;
    }
    let options = body.entry("stream_options").or_insert_with(|| Value::Object(Map::new()));
    match options.as_object_mut() {
        Some(map) => {
            map.insert("include_usage".into(), Value::Bool(true));
        }
        None => *options = serde_json::json!({ "include_usage": true }),
    }
}

/// Moves `from` to `to`; when both are present `from` wins, as `ChatRequest::max_output_tokens` prefers
/// `max_completion_tokens` over `max_tokens`.
pub(super) fn rename_field(body: &mut Body, from: &str, to: &str) {
    if let Some(value) = body.remove(from) {
        body.insert(to.into(), value);
    }
}

/// Servers that predate OpenAI's `developer` role reject it; `system` is what it replaced.
pub(super) fn developer_as_system(body: &mut Body) {
    for message in messages_mut(body) {
        if message.get("role").and_then(Value::as_str) == Some("developer") {
            message.insert("role".into(), Value::String("system".into()));
        }
    }
}

/// The request's messages as JSON objects (anything else in the array is left alone).
pub(super) fn messages_mut(body: &mut Body) -> impl Iterator<Item = &mut Map<String, Value>> {
    body.get_mut("messages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|messages| messages.iter_mut().filter_map(Value::as_object_mut))
}

pub(super) fn to_bytes(body: Body) -> Vec<u8> {
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// `content-type` plus the credential header, when the provider has a key.
pub(super) fn json_headers(credential: Option<(&str, String)>) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some((name, value)) = credential {
        headers.push((name.to_string(), value));
    }
    headers
}

/// `authorization: Bearer <key>`; local servers (Ollama, vLLM) often run without a key and get none.
pub(super) fn bearer(api_key: Option<&str>) -> Option<(&'static str, String)> {
    api_key.map(|key| ("authorization", format!("Bearer {key}")))
}

/// A 2xx chat or embeddings body: passed to the client byte for byte, usage read on the way.
pub(super) fn read_response(body: &[u8]) -> Result<Translated, AiError> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| AiError::BadUpstreamResponse(format!("the response is not JSON: {e}")))?;
    let Some(object) = parsed.as_object() else {
        return Err(AiError::BadUpstreamResponse("the response is not a JSON object".into()));
    };
    // Some compatible servers answer 200 with an error object instead of a completion.
    if object.contains_key("error") && !object.contains_key("choices") && !object.contains_key("data") {
        return Err(read_error(200, body));
    }
    let usage = object.get("usage").map(Usage::from_openai).unwrap_or_default();
    Ok(Translated { body: body.to_vec(), usage })
}

/// Reads the error shapes OpenAI-speaking servers send: OpenAI's `{"error":{...}}`, a bare
/// `{"error":"text"}` (Ollama, llama.cpp), Mistral's flat `{"object":"error","message",...}` and the
/// `{"detail":...}` of FastAPI validation errors (Mistral's and vLLM's 422).
pub(super) fn read_error(status: u16, body: &[u8]) -> AiError {
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return openai_style_error(status, body);
    };
    let upstream = |message: String| AiError::Upstream {
        status: client_status(status),
        kind: kind_for(status),
        code: None,
        message,
    };
    if let Some(Value::String(message)) = parsed.get("error") {
        return upstream(message.clone());
    }
    if parsed.get("error").is_none() && parsed.get("message").is_none() {
        if let Some(detail) = parsed.get("detail") {
            return upstream(describe_detail(detail));
        }
    }
    let mut error = openai_style_error(status, body);
    let inner = parsed.get("error").unwrap_or(&parsed);
    if let (AiError::Upstream { message, .. }, Some(raw)) = (&mut error, inner.get("message")) {
        // Mistral has sent structured messages; the client still gets text.
        if !raw.is_string() && !raw.is_null() {
            *message = clip(&raw.to_string());
        }
    }
    if let AiError::Upstream { message, .. } = &mut error {
        if message.is_empty() {
            *message = fallback_message(status, body);
        }
    }
    error
}

/// FastAPI's `detail`: a string, or a list of `{"loc":[...],"msg":...}` findings.
fn describe_detail(detail: &Value) -> String {
    match detail {
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let findings: Vec<String> = items
                .iter()
                .map(|item| {
                    let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                    let loc: Vec<String> = item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|parts| {
                            parts
                                .iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    if loc.is_empty() {
                        msg.to_string()
                    } else {
                        format!("{}: {msg}", loc.join("."))
                    }
                })
                .collect();
            clip(&findings.join("; "))
        }
        other => clip(&other.to_string()),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(500).collect()
}

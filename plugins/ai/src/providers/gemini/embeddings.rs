//! OpenAI `/v1/embeddings` ↔ Gemini `batchEmbedContents`: one embed request per input text.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::request::unknown_extras;
use crate::adapter::{json_bytes, EmbeddingsRequest, Target, Translated};
use crate::{AiError, Usage};

pub(super) fn wants_base64(req: &EmbeddingsRequest) -> bool {
    req.encoding_format.as_deref() == Some("base64")
}

pub(super) fn request_body(req: &EmbeddingsRequest, model: &str) -> Result<(Value, Vec<String>), AiError> {
    match req.encoding_format.as_deref() {
        None | Some("float") | Some("base64") => {}
        Some(other) => {
            return Err(AiError::invalid("encoding_format", format!("unknown encoding_format `{other}`")));
        }
    }
    let requests: Vec<Value> = texts(&req.input)?
        .into_iter()
        .map(|text| {
            let mut one = Map::new();
            one.insert("model".into(), Value::String(format!("models/{model}")));
            one.insert("content".into(), json!({ "parts": [{ "text": text }] }));
            if let Some(dimensions) = req.dimensions {
                one.insert("outputDimensionality".into(), json!(dimensions));
            }
            Value::Object(one)
        })
        .collect();
    let mut dropped = Vec::new();
    if req.user.is_some() {
        dropped.push("user".to_string());
    }
    dropped.extend(unknown_extras(&req.extra, &[]));
    Ok((json!({ "requests": requests }), dropped))
}

/// A string or an array of strings. Gemini embeds text only, so OpenAI's token-array inputs are refused.
fn texts(input: &Value) -> Result<Vec<&str>, AiError> {
    let refuse = |message: &str| AiError::invalid("input", message);
    match input {
        Value::String(text) => Ok(vec![text.as_str()]),
        Value::Array(items) if items.is_empty() => Err(refuse("input must not be empty")),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    refuse("Gemini embeds text only: input must be a string or an array of strings")
                })
            })
            .collect(),
        _ => Err(refuse("input must be a string or an array of strings")),
    }
}

#[derive(Deserialize)]
struct BatchEmbeddings {
    embeddings: Vec<ContentEmbedding>,
}

/// Numbers are kept as Gemini wrote them, so float output is exactly what the provider sent.
#[derive(Deserialize)]
struct ContentEmbedding {
    values: Vec<serde_json::Number>,
}

pub(super) fn response(body: &[u8], target: &Target<'_>, base64: bool) -> Result<Translated, AiError> {
    let parsed: BatchEmbeddings = serde_json::from_slice(body)
        .map_err(|e| AiError::BadUpstreamResponse(format!("Gemini embeddings response: {e}")))?;
    let data: Vec<Value> = parsed
        .embeddings
        .iter()
        .enumerate()
        .map(|(index, embedding)| {
            let vector =
                if base64 { Value::String(as_base64(&embedding.values)) } else { json!(embedding.values) };
            json!({ "object": "embedding", "index": index, "embedding": vector })
        })
        .collect();
    // batchEmbedContents reports no token counts, so usage is zero: budgets cannot charge for Gemini embeddings.
    let usage = Usage::default();
    let body = json!({
        "object": "list",
        "data": data,
        "model": target.client_model,
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    });
    Ok(Translated { body: json_bytes(&body), usage })
}

/// OpenAI's base64 encoding: the vector as little-endian `f32`s.
fn as_base64(values: &[serde_json::Number]) -> String {
    // Narrowing to f32 is the point: OpenAI's base64 format carries single-precision floats.
    let bytes: Vec<u8> =
        values.iter().flat_map(|v| (v.as_f64().unwrap_or(0.0) as f32).to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

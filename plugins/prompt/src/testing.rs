//! Test helpers: configs compiled from JSON exactly as the pipeline will, errors as their text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use tollgate_core::ConfigPath;

use crate::{Endpoint, PromptConfig, RawPromptConfig};

/// Compiles a `prompt` section; the error is `path: message`, paths starting at `prompt`.
pub fn compile(config: Value) -> Result<PromptConfig, String> {
    let text = config.to_string();
    let raw: RawPromptConfig = serde_json::from_str(&text)
        .map_err(|e| format!("prompt.{}: {e}", tollgate_core::json_error_path(text.as_bytes(), &e)))?;
    PromptConfig::compile(raw, &ConfigPath::root().field("prompt")).map_err(|e| e.to_string())
}

/// A config with this one endpoint.
pub fn with_endpoint(endpoint: Value) -> Result<PromptConfig, String> {
    compile(json!({ "endpoints": [endpoint] }))
}

/// The first endpoint of a config that must compile.
pub fn endpoint_of(config: &PromptConfig) -> &Endpoint {
    config.endpoints.iter().next().expect("the config has an endpoint")
}

/// A summarizer: a required text, an optional enum with a default, an optional integer.
pub fn summarizer() -> Value {
    json!({
        "path": "/summarize",
        "model": "gpt-4o-mini",
        "description": "Summarize a text",
        "temperature": 0.2,
        "max_tokens": 300,
        "variables": {
            "text": {"type": "string", "required": true, "min_length": 1, "max_length": 2000, "description": "The text"},
            "style": {"type": "enum", "values": ["bullets", "prose"], "default": "prose"},
            "words": {"type": "integer", "minimum": 10, "maximum": 500}
        },
        "versions": [{
            "name": "v1",
            "messages": [
                {"role": "system", "content": "You summarize texts as {{style}}."},
                {"role": "user", "content": "Summarize in about {{words}} words:\n{{text}}"}
            ]
        }]
    })
}

/// An extractor answering JSON matching a strict-compatible schema.
pub fn extractor() -> Value {
    json!({
        "path": "/extract",
        "model": "claude-sonnet",
        "variables": {"text": {"type": "string", "required": true}},
        "versions": [{"name": "a", "messages": [{"role": "user", "content": "Extract from: {{text}}"}]}],
        "output": {"mode": "json", "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "age": {"type": ["integer", "null"], "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
            },
            "required": ["name", "age", "tags"],
            "additionalProperties": false
        }}
    })
}

//! What a prompt endpoint's client gets back: the model's text (or the JSON it was asked for, checked
//! against the schema), the model, the prompt version and the token usage, in place of the chat completion.

use serde_json::{json, Value};
use tollgate_ai::Usage;
use tollgate_core::{ConfigError, ConfigPath};

use crate::config::RawOutput;
use crate::endpoints::Endpoint;
use crate::error::PromptError;
use crate::schema::JsonSchema;

/// How many schema violations a mismatch reports; the first few say enough to fix a prompt.
const MAX_SCHEMA_ERRORS: usize = 5;

/// An endpoint's output mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// `{"result": "<text>"}`.
    Text,
    /// `{"result": <the parsed JSON>}`, checked against the schema.
    Json(Box<JsonSchema>),
}

impl Output {
    pub fn compile(raw: RawOutput, at: &ConfigPath) -> Result<Output, ConfigError> {
        match raw {
            RawOutput::Text {} => Ok(Output::Text),
            RawOutput::Json { schema } => {
                let schema = JsonSchema::compile(schema, &at.field("schema"))?;
                if !schema.is_object_schema() {
                    // Providers' structured-output modes (OpenAI's json_schema above all) want an object root.
                    return Err(at.field("schema").field("type").error("must be \"object\""));
                }
                Ok(Output::Json(Box::new(schema)))
            }
        }
    }
}

/// The result of shaping a completion.
#[derive(Clone, Debug, PartialEq)]
pub enum Shaped {
    /// The client's body.
    Reply(Value),
    /// The answer was not JSON matching the schema. The caller retries once, then answers with
    /// `PromptError::OutputSchemaMismatch` (`into_error`).
    SchemaMismatch(String),
}

impl Shaped {
    /// The body, or the 502 to send when there is no retry left.
    pub fn into_result(self) -> Result<Value, PromptError> {
        match self {
            Shaped::Reply(body) => Ok(body),
            Shaped::SchemaMismatch(reason) => Err(PromptError::OutputSchemaMismatch(reason)),
        }
    }
}

impl Endpoint {
    /// Builds the client's body from a successful OpenAI-shaped chat completion (as the AI plugin hands it
    /// back, whatever the provider): `{"result", "model", "version", "usage"}`.
    pub fn shape_response(&self, version: &str, completion: &[u8]) -> Result<Shaped, PromptError> {
        let completion: Value = serde_json::from_slice(completion)
            .map_err(|e| PromptError::NoOutput(format!("the completion is not JSON: {e}")))?;
        let Some(text) = completion.pointer("/choices/0/message/content").and_then(Value::as_str) else {
            let finish = completion.pointer("/choices/0/finish_reason").and_then(Value::as_str);
            let why = match finish {
                Some(reason) => format!("the answer has no text (finish_reason {reason:?})"),
                None => "the answer has no text".to_string(),
            };
            return Err(PromptError::NoOutput(why));
        };
        let result = match &self.output {
            Output::Text => Value::String(text.to_string()),
            Output::Json(schema) => match parse_json_answer(text) {
                Err(reason) => return Ok(Shaped::SchemaMismatch(reason)),
                Ok(value) => {
                    let errors = schema.validate(&value, MAX_SCHEMA_ERRORS);
                    if !errors.is_empty() {
                        return Ok(Shaped::SchemaMismatch(errors.join("; ")));
                    }
                    value
                }
            },
        };
        let model = completion.get("model").and_then(Value::as_str).unwrap_or(&self.model);
        let usage = completion.get("usage").map(Usage::from_openai).unwrap_or_default();
        Ok(Shaped::Reply(json!({
            "result": result,
            "model": model,
            "version": version,
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.total(),
            },
        })))
    }
}

/// The answer's JSON. A Markdown code fence around it is tolerated: providers whose structured-output
/// mode is emulated (a prompt, not a constraint) often add one.
fn parse_json_answer(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    let unfenced = trimmed
        .strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
        .map(|inner| inner.strip_prefix("json").unwrap_or(inner))
        .unwrap_or(trimmed);
    serde_json::from_slice(unfenced.as_bytes()).map_err(|e| format!("the answer is not JSON: {e}"))
}

#[cfg(test)]
mod tests;

//! The `prompt` config section as the operator writes it, and its compilation into endpoints, decorators
//! and the OpenAPI document.

mod endpoint;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use tollgate_ai::chat::Role;
use tollgate_core::{ConfigError, ConfigPath, LocalReply};

use crate::decorators::Decorators;
use crate::endpoints::PromptEndpoints;
use crate::openapi::OpenApi;

/// `prompt` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPromptConfig {
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    pub openapi: RawOpenApi,
    #[serde(default)]
    pub decorators: Vec<RawDecorator>,
}

/// `prompt.endpoints[]` as written: one REST operation backed by a model and versioned prompt templates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub path: String,
    /// POST when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Any model name the `ai` section routes.
    pub model: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Ordered by name, so the OpenAPI document and error lists come out the same on every load.
    #[serde(default)]
    pub variables: BTreeMap<String, RawVariable>,
    pub versions: Vec<RawVersion>,
    #[serde(default)]
    pub output: RawOutput,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// How long one provider call may take, in milliseconds (the filter makes the call itself, so Envoy's
    /// route timeouts do not apply).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Two minutes: a long completion takes tens of seconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// `prompt.endpoints[].variables.<name>` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    #[serde(rename = "type")]
    pub kind: RawVariableType,
    #[serde(default)]
    pub required: bool,
    /// Characters for a string, items for an array.
    #[serde(default)]
    pub min_length: Option<u64>,
    #[serde(default)]
    pub max_length: Option<u64>,
    #[serde(default)]
    pub minimum: Option<f64>,
    #[serde(default)]
    pub maximum: Option<f64>,
    /// The allowed strings of an `enum`.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// The type of an `array`'s items.
    #[serde(default)]
    pub items: Option<ItemType>,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawVariableType {
    String,
    Number,
    Integer,
    Boolean,
    Enum,
    Array,
}

/// The scalar types an array variable's items can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    String,
    Number,
    Integer,
    Boolean,
}

impl ItemType {
    /// The JSON Schema / OpenAPI type name.
    pub fn name(self) -> &'static str {
        match self {
            ItemType::String => "string",
            ItemType::Number => "number",
            ItemType::Integer => "integer",
            ItemType::Boolean => "boolean",
        }
    }
}

/// `prompt.endpoints[].versions[]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersion {
    pub name: String,
    /// Relative share of requests; 1 when absent.
    #[serde(default = "default_weight")]
    pub weight: u32,
    pub messages: Vec<RawMessage>,
}

fn default_weight() -> u32 {
    1
}

/// A chat message as written: a template in a version, fixed text in a decorator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    pub role: MessageRole,
    pub content: String,
}

/// The roles a configured message may take; tool messages only make sense inside a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    System,
    User,
    Assistant,
}

impl From<MessageRole> for Role {
    fn from(role: MessageRole) -> Role {
        match role {
            MessageRole::System => Role::System,
            MessageRole::User => Role::User,
            MessageRole::Assistant => Role::Assistant,
        }
    }
}

/// `prompt.endpoints[].output` as written: plain text (the default) or JSON matching a schema.
#[derive(Debug, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawOutput {
    /// A struct variant, not a unit one: serde ignores unknown fields beside the tag of a unit variant.
    Text {},
    Json {
        schema: Value,
    },
}

impl Default for RawOutput {
    fn default() -> Self {
        RawOutput::Text {}
    }
}

/// The path the OpenAPI document is served at when the config names none.
pub const DEFAULT_OPENAPI_PATH: &str = "/.well-known/tollgate/openapi.json";

/// `prompt.openapi` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// `prompt.decorators[]` as written: fixed messages around every chat request under a path prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecorator {
    pub path_prefix: String,
    #[serde(default)]
    pub prepend: Vec<RawMessage>,
    #[serde(default)]
    pub append: Vec<RawMessage>,
}

/// The compiled `prompt` section.
#[derive(Debug)]
pub struct PromptConfig {
    pub endpoints: PromptEndpoints,
    pub decorators: Decorators,
    pub openapi: OpenApi,
}

impl PromptConfig {
    /// Checks and compiles `prompt`; errors name the JSON path below `path`.
    pub fn compile(raw: RawPromptConfig, path: &ConfigPath) -> Result<PromptConfig, ConfigError> {
        let endpoints = endpoint::compile_all(raw.endpoints, &path.field("endpoints"))?;
        let decorators = Decorators::compile(raw.decorators, &path.field("decorators"))?;
        let openapi = OpenApi::compile(raw.openapi, &endpoints, &path.field("openapi"))?;
        Ok(PromptConfig { endpoints, decorators, openapi })
    }

    /// The OpenAPI document, when this request asks for it (GET at `prompt.openapi.path`).
    pub fn openapi_reply(&self, method: &str, path: &str) -> Option<LocalReply> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        (method == "GET" && path == self.openapi.path).then(|| self.openapi.reply())
    }
}

/// A request path as config accepts it: absolute, no query, no whitespace, no OpenAPI template braces.
pub(crate) fn check_path(path: &str, at: &ConfigPath) -> Result<(), ConfigError> {
    if !path.starts_with('/') {
        return Err(at.error("must start with '/'"));
    }
    if let Some(c) =
        path.chars().find(|c| matches!(c, '?' | '#' | '{' | '}') || c.is_whitespace() || c.is_control())
    {
        return Err(at.error(format!("must not contain {c:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

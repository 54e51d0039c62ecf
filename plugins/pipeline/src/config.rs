use serde::Deserialize;
use tollgate_ai::{Ai, RawAiConfig};
use tollgate_auth::{Auth, RawAuthConfig};
use tollgate_core::{ConfigError, ConfigPath};
use tollgate_prompt::{PromptConfig, RawPromptConfig};
use tollgate_ratelimit::{RateLimits, RawRateLimitConfig};

use crate::head_limits::{HeadLimits, RawHeadLimits};
use crate::header_rules::{HeaderRules, RawHeaderRules};
use crate::local_replies::{LocalReplies, RawLocalReply};
use crate::trace::{RawTrace, TraceConfig};
use crate::Pipeline;

/// The filter configuration exactly as the operator writes it (JSON). Every field is optional; an unknown
/// field is an error so that a typo never silently disables a setting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Bounds on the request head the filter reads (431 beyond them); defaults sit just above Envoy's own.
    #[serde(default)]
    pub limits: RawHeadLimits,
    /// Edits applied to every request before it goes upstream.
    #[serde(default)]
    pub upstream_headers: RawHeaderRules,
    /// Edits applied to every upstream response before it reaches the client.
    #[serde(default)]
    pub response_headers: RawHeaderRules,
    /// Requests answered by the filter itself, first match wins (before authentication, so health checks
    /// and maintenance replies need no credentials).
    #[serde(default)]
    pub local_replies: Vec<RawLocalReply>,
    /// Who may call, with which credentials; absent means no authentication.
    #[serde(default)]
    pub auth: Option<RawAuthConfig>,
    /// Request limits, token limits and currency budgets; absent means no limits.
    #[serde(default)]
    pub ratelimit: Option<RawRateLimitConfig>,
    /// The OpenAI-compatible AI gateway (providers, model routes, limits); absent means no AI routes.
    #[serde(default)]
    pub ai: Option<RawAiConfig>,
    /// Prompt templates published as REST endpoints, chat decorators and their OpenAPI document; needs `ai`.
    #[serde(default)]
    pub prompt: Option<RawPromptConfig>,
    /// The decision trace (filter state for the access log, a header for trusted callers); off by default.
    #[serde(default)]
    pub trace: RawTrace,
}

impl Pipeline {
    /// Parses and compiles the filter configuration. An empty configuration means "all defaults".
    /// Errors name the JSON path of the offending setting.
    pub fn from_json(bytes: &[u8]) -> Result<Pipeline, ConfigError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Pipeline::try_from(RawConfig::default()),
            // serde would read a struct from a JSON array by position; a config is always an object.
            Some(b'{') => {}
            Some(_) => return Err(ConfigPath::root().error("the configuration must be a JSON object")),
        }
        let raw: RawConfig = serde_json::from_slice(bytes)
            .map_err(|e| ConfigError::at(&tollgate_core::json_error_path(bytes, &e), e.to_string()))?;
        Pipeline::try_from(raw)
    }
}

impl TryFrom<RawConfig> for Pipeline {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        let root = ConfigPath::root();
        let ai = raw.ai.map(|ai| Ai::compile(ai, &root.field("ai"))).transpose()?;
        let prompt = raw.prompt.map(|p| PromptConfig::compile(p, &root.field("prompt"))).transpose()?;
        if let Some(prompt) = &prompt {
            check_prompt_models(prompt, ai.as_ref(), &root.field("prompt"))?;
        }
        Ok(Pipeline {
            head_limits: HeadLimits::compile(raw.limits, &root.field("limits"))?,
            upstream_headers: HeaderRules::compile(raw.upstream_headers, &root.field("upstream_headers"))?,
            response_headers: HeaderRules::compile(raw.response_headers, &root.field("response_headers"))?,
            local_replies: LocalReplies::compile(raw.local_replies, &root.field("local_replies"))?,
            auth: raw.auth.map(|auth| Auth::compile(auth, &root.field("auth"))).transpose()?,
            ratelimit: raw
                .ratelimit
                .map(|r| RateLimits::compile(r, &root.field("ratelimit")))
                .transpose()?
                .filter(|r| !r.is_empty() || r.has_prices()),
            ai,
            prompt,
            trace: TraceConfig::compile(raw.trace, &root.field("trace"))?,
        })
    }
}

/// Prompt endpoints and decorators act through the AI gateway: each endpoint's model must be one it routes.
fn check_prompt_models(prompt: &PromptConfig, ai: Option<&Ai>, path: &ConfigPath) -> Result<(), ConfigError> {
    let uses_ai = !prompt.endpoints.is_empty() || !prompt.decorators.is_empty();
    let Some(ai) = ai else {
        return match uses_ai {
            true => Err(path.error("prompt endpoints and decorators need the ai section")),
            false => Ok(()),
        };
    };
    for (i, endpoint) in prompt.endpoints.iter().enumerate() {
        if !ai.routes_model(&endpoint.model) {
            let at = path.field("endpoints").index(i).field("model");
            return Err(at.error(format!("no ai.models entry serves {:?}", endpoint.model)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match Pipeline::from_json(json.as_bytes()) {
            Ok(_) => panic!("config accepted: {json}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_and_blank_configs_are_defaults() {
        assert!(Pipeline::from_json(b"").is_ok());
        assert!(Pipeline::from_json(b"  \n").is_ok());
        assert!(Pipeline::from_json(b"{}").is_ok());
    }

    #[test]
    fn unknown_fields_name_their_path() {
        assert!(
            err(r#"{"upstream_header":{}}"#).starts_with("upstream_header: unknown field `upstream_header`")
        );
        assert!(err(r#"{"local_replies":[{"path_prefix":"/a","stauts":200}]}"#)
            .starts_with("local_replies[0].stauts: unknown field `stauts`"));
    }

    #[test]
    fn type_errors_name_their_path() {
        assert!(err(r#"{"upstream_headers":{"set":{"x-a":1}}}"#)
            .starts_with("upstream_headers.set.x-a: invalid type"));
        assert!(err(r#"{"local_replies":[{"path_prefix":"/a","status":"200"}]}"#)
            .starts_with("local_replies[0].status: invalid type"));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_crash() {
        assert!(err("{").starts_with("(root): EOF while parsing"));
        assert_eq!(err("[1,2]"), "(root): the configuration must be a JSON object");
        assert_eq!(err("null"), "(root): the configuration must be a JSON object");
        assert!(Pipeline::from_json(&[0xff, 0xfe, b'{']).is_err());
    }
}

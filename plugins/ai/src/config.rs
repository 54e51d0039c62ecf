//! The `ai` config section as the operator writes it, and its compilation into providers, routes and limits.

mod aws;
mod base_url;
mod checks;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use tollgate_core::{header_name, ConfigError, ConfigPath};

use crate::adapter::ProviderSettings;
use crate::providers::ProviderKind;
use crate::router::{Route, Router};

pub use base_url::BaseUrl;
use checks::{check_header_value, check_name};

/// The header a route matches to pick the Envoy cluster, when the config names none.
pub const DEFAULT_CLUSTER_HEADER: &str = "x-tollgate-cluster";

/// `ai` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAiConfig {
    pub providers: Vec<RawProvider>,
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub cluster_header: Option<String>,
    #[serde(default)]
    pub unsupported_fields: UnsupportedFields,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub failover: RawFailover,
}

/// `ai.failover` as written.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailover {
    /// How long a provider (or a pooled key) that failed sits out before it is tried again.
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: u64,
}

fn default_cooldown() -> u64 {
    30
}

impl Default for RawFailover {
    fn default() -> Self {
        RawFailover { cooldown_seconds: default_cooldown() }
    }
}

/// `ai.providers[]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: ProviderKind,
    pub cluster: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    /// A pool of keys used in turn (instead of `api_key`); a key the provider refuses (401) or throttles
    /// (429) sits out for `failover.cooldown_seconds`.
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// Bedrock: the AWS region (`us-east-1`), which names the default endpoint and the signing scope.
    #[serde(default)]
    pub region: Option<String>,
    /// Bedrock: static AWS credentials. Secrets: never printed, never quoted in errors.
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    #[serde(default)]
    pub aws_secret_access_key: Option<String>,
    #[serde(default)]
    pub aws_session_token: Option<String>,
}

/// Written by hand so that the provider credential never reaches a log line.
impl fmt::Debug for RawProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawProvider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("cluster", &self.cluster)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_keys", &format_args!("<{} redacted>", self.api_keys.len()))
            .field("api_version", &self.api_version)
            .field("deployments", &self.deployments)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("region", &self.region)
            .field("aws_access_key_id", &self.aws_access_key_id.as_ref().map(|_| "<redacted>"))
            .field("aws_secret_access_key", &self.aws_secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("aws_session_token", &self.aws_session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `ai.models[]` as written: a client-facing name (or pattern with one `*`) served by a provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    pub provider: String,
    /// The provider's name for the model; `*` inserts what the name's `*` matched. Defaults to the name.
    #[serde(default)]
    pub model: Option<String>,
    /// Providers to use, in this order, while `provider` (and the fallbacks before) cool down after failing.
    #[serde(default)]
    pub fallbacks: Vec<RawFallback>,
}

/// `ai.models[].fallbacks[]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub provider: String,
    /// As `ai.models[].model`, for this provider.
    #[serde(default)]
    pub model: Option<String>,
}

/// What to do with request fields the chosen provider cannot honour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsupportedFields {
    /// Leave them out and list them in `x-tollgate-dropped`.
    #[default]
    Drop,
    /// Refuse the request with a 400 naming them.
    Reject,
}

/// `ai.limits` as written; every bound is in bytes.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    #[serde(default = "default_max_event")]
    pub max_event_bytes: usize,
}

fn default_max_request() -> usize {
    4 << 20
}
fn default_max_response() -> usize {
    8 << 20
}
fn default_max_event() -> usize {
    1 << 20
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_request_bytes: default_max_request(),
            max_response_bytes: default_max_response(),
            max_event_bytes: default_max_event(),
        }
    }
}

/// The bounds the gateway enforces, checked to be positive.
pub type Limits = RawLimits;

/// A provider as the hot path needs it. The adapter is built from `settings` by the gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub cluster: String,
    /// The rest of an `api_keys` pool, after the first (which is `settings.api_key`). Secrets.
    pub more_keys: Vec<String>,
    /// `host[:port]` of `base_url`, sent as `:authority`.
    pub authority: String,
    pub settings: ProviderSettings,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.settings.name)
            .field("kind", &self.kind)
            .field("cluster", &self.cluster)
            .field("authority", &self.authority)
            .field("base_path", &self.settings.base_path)
            .field("api_key", &self.settings.api_key.as_ref().map(|_| "<redacted>"))
            .field("more_keys", &format_args!("<{} redacted>", self.more_keys.len()))
            .field("aws", &self.settings.aws)
            .finish_non_exhaustive()
    }
}

/// The compiled `ai` section.
#[derive(Debug)]
pub struct AiConfig {
    pub providers: Vec<ProviderConfig>,
    pub router: Router,
    pub cluster_header: String,
    pub unsupported_fields: UnsupportedFields,
    pub limits: Limits,
    /// Nanoseconds a failed provider or key sits out.
    pub cooldown_nanos: u64,
}

impl AiConfig {
    /// Checks and compiles `ai`; errors name the JSON path below `path` and never quote a credential.
    pub fn compile(raw: RawAiConfig, path: &ConfigPath) -> Result<AiConfig, ConfigError> {
        let mut providers: Vec<ProviderConfig> = Vec::with_capacity(raw.providers.len());
        for (i, provider) in raw.providers.into_iter().enumerate() {
            let at = path.field("providers").index(i);
            let compiled = compile_provider(provider, &at)?;
            if providers.iter().any(|p| p.settings.name == compiled.settings.name) {
                let name = &compiled.settings.name;
                return Err(at.field("name").error(format!("provider {name:?} is declared twice")));
            }
            providers.push(compiled);
        }
        let mut routes = Vec::with_capacity(raw.models.len());
        let find = |name: &str, at: &ConfigPath| {
            providers
                .iter()
                .position(|p| p.settings.name == name)
                .ok_or_else(|| at.error(format!("no provider is named {name:?}")))
        };
        for (i, model) in raw.models.into_iter().enumerate() {
            let at = path.field("models").index(i);
            let provider = find(&model.provider, &at.field("provider"))?;
            let mut route = Route::compile(&model.name, model.model.as_deref(), provider, &at)?;
            for (j, fallback) in model.fallbacks.iter().enumerate() {
                let at = at.field("fallbacks").index(j);
                let provider = find(&fallback.provider, &at.field("provider"))?;
                route.add_fallback(provider, fallback.model.as_deref(), &at)?;
            }
            routes.push(route);
        }
        let router = Router::new(routes, &path.field("models"))?;
        let cluster_header = match raw.cluster_header {
            Some(name) => header_name(&name, &path.field("cluster_header"))?,
            None => DEFAULT_CLUSTER_HEADER.to_string(),
        };
        let limits = raw.limits;
        let at = path.field("limits");
        for (name, value) in [
            ("max_request_bytes", limits.max_request_bytes),
            ("max_response_bytes", limits.max_response_bytes),
            ("max_event_bytes", limits.max_event_bytes),
        ] {
            if value == 0 {
                return Err(at.field(name).error("must be > 0"));
            }
        }
        let cooldown = raw.failover.cooldown_seconds;
        if cooldown == 0 || cooldown > 86_400 {
            return Err(path.field("failover").field("cooldown_seconds").error("must be 1 to 86400"));
        }
        Ok(AiConfig {
            providers,
            router,
            cluster_header,
            unsupported_fields: raw.unsupported_fields,
            limits,
            cooldown_nanos: cooldown.saturating_mul(1_000_000_000),
        })
    }
}

fn compile_provider(raw: RawProvider, at: &ConfigPath) -> Result<ProviderConfig, ConfigError> {
    check_name(&raw.name, &at.field("name"))?;
    check_header_value(&raw.cluster, &at.field("cluster"), true)?;
    if let Some(key) = &raw.api_key {
        check_header_value(key, &at.field("api_key"), false)?;
    }
    for (i, key) in raw.api_keys.iter().enumerate() {
        check_header_value(key, &at.field("api_keys").index(i), false)?;
    }
    if raw.api_key.is_some() && !raw.api_keys.is_empty() {
        return Err(at.field("api_keys").error("give api_key or api_keys, not both"));
    }
    if let Some(version) = &raw.api_version {
        check_header_value(version, &at.field("api_version"), true)?;
    }
    for (model, deployment) in &raw.deployments {
        check_name(deployment, &at.field("deployments").field(model))?;
    }
    let aws = aws::credentials(&raw, at)?;
    let url = match (&raw.base_url, raw.kind.default_base_url(), &aws) {
        (Some(url), _, _) => BaseUrl::parse(url, &at.field("base_url"))?,
        (None, Some(default), _) => BaseUrl::parse(default, &at.field("base_url"))?,
        (None, None, Some(aws)) => {
            BaseUrl::parse(&aws::default_base_url(&aws.region), &at.field("base_url"))?
        }
        (None, None, None) => {
            return Err(at.field("base_url").error("is required for this kind of provider"));
        }
    };
    let default_max_tokens = raw.default_max_tokens.unwrap_or(4096);
    if default_max_tokens == 0 {
        return Err(at.field("default_max_tokens").error("must be > 0"));
    }
    // A pool is the provider's keys in turn; one key (or none) is a pool of one.
    let mut keys = raw.api_keys;
    let api_key = raw.api_key.or_else(|| (!keys.is_empty()).then(|| keys.remove(0)));
    Ok(ProviderConfig {
        kind: raw.kind,
        cluster: raw.cluster,
        authority: url.authority.clone(),
        more_keys: keys,
        settings: ProviderSettings {
            name: raw.name,
            base_path: url.path,
            api_key,
            api_version: raw.api_version,
            deployments: raw.deployments,
            default_max_tokens,
            authority: url.authority,
            aws,
        },
    })
}

#[cfg(test)]
mod tests;

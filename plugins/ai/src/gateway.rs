//! The provider-neutral gateway: which requests are AI requests (OpenAI's chat completions, embeddings and
//! models, Anthropic's messages and count_tokens), where they go, and the per-request state
//! that carries a request's translation from its head to the last byte of its response. Values in,
//! decisions out; the pipeline applies them.

mod call;
mod health;
mod metrics;
mod models;
mod request;
mod response;
mod stream;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tollgate_core::{ConfigError, ConfigPath, HeaderEdits, LocalReply, RequestHead};

use crate::adapter::{Adapter, EmbeddingsRequest, ProviderSettings, Target};
use crate::config::{AiConfig, ProviderConfig, RawAiConfig};
use crate::messages::{COUNT_TOKENS_PATH, MESSAGES_PATH};
use crate::providers::ProviderKind;
use crate::Usage;

pub use call::CallAnswer;
use metrics::Labels;
pub use metrics::METRIC_NAMES;
pub use response::{AiBody, AiResponseHead};
use stream::ResponseState;

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";
pub const MODELS_PATH: &str = "/v1/models";
/// Response header naming the provider that served the request.
pub const PROVIDER_HEADER: &str = "x-tollgate-provider";
/// Response header listing request fields the provider could not honour and that were left out.
pub const DROPPED_HEADER: &str = "x-tollgate-dropped";
/// Response header on a `count_tokens` answer the gateway estimated itself (the provider cannot count).
pub const ESTIMATED_HEADER: &str = "x-tollgate-estimated";
/// Headers a client may carry its own credential in; none of them is forwarded to a provider.
pub const CLIENT_CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The compiled `ai` section with one adapter per provider; shared by every stream of a worker.
pub struct Ai {
    config: AiConfig,
    /// Per provider, one adapter per key of its pool (one for a provider with a single key or none).
    adapters: Vec<Vec<Box<dyn Adapter>>>,
    /// Per provider, whose turn it is in its key pool (per worker).
    next_key: Vec<AtomicU64>,
    /// Numbers requests that arrive without `x-request-id`, for the ids of responses whose provider gives none.
    next_request: AtomicU64,
}

/// Written by hand: adapters hold the provider credentials, which never reach a log line.
impl fmt::Debug for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ai").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Who is asking, as auth decided it.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The consumer name for metrics; `None` counts as `anonymous`.
    pub consumer: Option<&'a str>,
    /// Whether the caller's credential may use a model (auth's model scopes).
    pub may_use_model: &'a dyn Fn(&str) -> bool,
}

/// What the gateway decided about a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AiHead {
    /// Not an AI route: let it through with these edits (the client's copy of the cluster header removed).
    Pass(HeaderEdits),
    /// Answered by the gateway (`/v1/models`, a wrong method).
    Reply(LocalReply),
    /// An AI request: hold the head until `Ai::on_request_body` has the whole body.
    NeedBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Embeddings,
    /// Anthropic's `POST /v1/messages`.
    Messages,
    /// Anthropic's `POST /v1/messages/count_tokens`.
    CountTokens,
}

/// The shape the client speaks, and so the shape of its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    /// OpenAI's (chat completions, embeddings).
    #[default]
    OpenAi,
    /// Anthropic's Messages API, converted to and from OpenAI's shape around the adapter.
    Anthropic,
    /// Anthropic's Messages API sent to Anthropic itself: request and answer go as they are.
    AnthropicNative,
}

/// What the gateway made of a whole request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AiRequest {
    /// Send it upstream: these head edits, this body.
    Upstream { head: HeaderEdits, body: Vec<u8> },
    /// Answered by the gateway itself (`count_tokens` for a provider that cannot count).
    Answer(LocalReply),
}

/// What one request was translated into, kept for its response.
#[derive(Debug)]
pub(crate) struct Forwarded {
    pub provider: usize,
    /// Which key of the provider's pool the request carries.
    pub key: usize,
    pub upstream_model: String,
    pub client_model: String,
    pub created: u64,
    pub request_id: String,
    pub stream: bool,
    pub include_usage: bool,
    pub format: Format,
    pub dropped: Vec<String>,
    /// The client's embeddings request, which some adapters need to shape the answer (`encoding_format`).
    pub embeddings: Option<Box<EmbeddingsRequest>>,
    pub sent_at: SystemTime,
    pub labels: Labels,
}

impl Forwarded {
    pub fn target(&self) -> Target<'_> {
        Target {
            upstream_model: &self.upstream_model,
            client_model: &self.client_model,
            created: self.created,
            request_id: &self.request_id,
        }
    }
}

/// One request's state in the gateway.
#[derive(Debug, Default)]
pub struct AiStream {
    endpoint: Option<Endpoint>,
    consumer: Option<String>,
    request_id: Option<String>,
    forwarded: Option<Forwarded>,
    response: ResponseState,
    usage: Option<Usage>,
    /// The client credential headers and `accept-encoding`, where the request carries them.
    strip: Vec<&'static str>,
    /// The client named the Anthropic API version it speaks (kept when its request goes to Anthropic).
    anthropic_version: bool,
}

impl AiStream {
    /// Whether the request body must be read (an AI request whose body has not been translated yet).
    pub fn reads_request_body(&self) -> bool {
        self.endpoint.is_some() && self.forwarded.is_none()
    }

    /// Whether the response body must be read (the request went upstream translated).
    pub fn reads_response_body(&self) -> bool {
        self.forwarded.is_some()
    }

    /// Whether the client speaks Anthropic's Messages API (its errors take Anthropic's shape).
    pub fn speaks_anthropic(&self) -> bool {
        matches!(self.endpoint, Some(Endpoint::Messages | Endpoint::CountTokens))
    }

    /// Tokens the request used: once the response is complete, or as reported so far while it streams.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.or_else(|| self.response.usage_so_far())
    }
}

impl Ai {
    /// Compiles `ai`; errors name the JSON path below `path`.
    pub fn compile(raw: RawAiConfig, path: &ConfigPath) -> Result<Ai, ConfigError> {
        Ai::compile_with(raw, path, ProviderKind::adapter)
    }

    /// As `compile`, with the adapters made by `adapter` (tests put a stand-in provider behind the gateway).
    pub fn compile_with(
        raw: RawAiConfig,
        path: &ConfigPath,
        adapter: impl Fn(ProviderKind, ProviderSettings) -> Box<dyn Adapter>,
    ) -> Result<Ai, ConfigError> {
        let config = AiConfig::compile(raw, path)?;
        let adapters = config
            .providers
            .iter()
            .map(|p| {
                let pool = p
                    .more_keys
                    .iter()
                    .map(|key| ProviderSettings { api_key: Some(key.clone()), ..p.settings.clone() });
                std::iter::once(p.settings.clone())
                    .chain(pool)
                    .map(|settings| adapter(p.kind, settings))
                    .collect()
            })
            .collect();
        let next_key = config.providers.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Ai { config, adapters, next_key, next_request: AtomicU64::new(0) })
    }

    /// The header the Envoy route matches to pick a provider's cluster.
    pub fn cluster_header(&self) -> &str {
        &self.config.cluster_header
    }

    /// The request head arrived (after auth let it through).
    pub fn on_request_head(&self, stream: &mut AiStream, head: &RequestHead, caller: &Caller<'_>) -> AiHead {
        let endpoint = match head.path_only() {
            CHAT_PATH => Endpoint::Chat,
            EMBEDDINGS_PATH => Endpoint::Embeddings,
            MESSAGES_PATH => Endpoint::Messages,
            COUNT_TOKENS_PATH => Endpoint::CountTokens,
            MODELS_PATH if head.method == "GET" => {
                return AiHead::Reply(models::list(&self.config, self.providers(), caller));
            }
            MODELS_PATH => return AiHead::Reply(method_not_allowed("GET")),
            // Clients must never pick a cluster themselves, on any route.
            _ if head.headers.contains(&self.config.cluster_header) => {
                return AiHead::Pass(HeaderEdits::default().remove(self.config.cluster_header.clone()))
            }
            _ => return AiHead::Pass(HeaderEdits::default()),
        };
        if head.method != "POST" {
            return AiHead::Reply(method_not_allowed("POST"));
        }
        stream.endpoint = Some(endpoint);
        // Removed before the request goes upstream, if present (each removal is a host call): the client's
        // credentials, and `accept-encoding`, as the response body is read and rewritten, so it must not come
        // back compressed.
        let stripped = CLIENT_CREDENTIAL_HEADERS.into_iter().chain(["accept-encoding"]);
        stream.strip = stripped.filter(|name| head.headers.contains(name)).collect();
        stream.consumer = caller.consumer.map(str::to_string);
        stream.anthropic_version = head.headers.contains("anthropic-version");
        stream.request_id = head.headers.get("x-request-id").map(request_id).filter(|id| !id.is_empty());
        AiHead::NeedBody
    }

    /// Whether some `ai.models` entry serves this model name.
    pub fn routes_model(&self, model: &str) -> bool {
        self.config.router.route(model).is_some()
    }

    fn providers(&self) -> &[ProviderConfig] {
        &self.config.providers
    }

    /// A provider and its adapter (its first key's: answers read the same whichever key asked).
    fn provider(&self, index: usize) -> Option<(&ProviderConfig, &dyn Adapter)> {
        self.provider_key(index, 0)
    }

    fn provider_key(&self, index: usize, key: usize) -> Option<(&ProviderConfig, &dyn Adapter)> {
        let adapter = self.adapters.get(index)?.get(key)?;
        Some((self.config.providers.get(index)?, adapter.as_ref()))
    }

    fn fresh_request_id(&self, created: u64) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("{created:x}{n:06x}")
    }
}

/// A client-sent request id, kept only as far as it is safe inside a response id.
fn request_id(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect()
}

fn method_not_allowed(allowed: &str) -> LocalReply {
    let message = format!("This endpoint only accepts {allowed} requests.");
    let mut reply = LocalReply::error(405, "invalid_request_error", "method_not_allowed", &message);
    reply.headers.push(("allow".into(), allowed.into()));
    reply
}

#[cfg(test)]
mod tests;

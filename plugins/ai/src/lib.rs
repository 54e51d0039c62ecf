//! Tollgate's AI gateway: clients speak the OpenAI API (`/v1/chat/completions`, `/v1/embeddings`,
//! `/v1/models`) or Anthropic's (`/v1/messages`, `/v1/messages/count_tokens`; see `messages`); the config's
//! `ai` section picks a provider per model and this crate translates requests, responses and SSE streams to
//! and from each provider's wire format, reporting usage as it goes.
//! Owns the `ai` config section.
//!
//! The flow for one request: `Ai::on_request_head` (routes, `/v1/models`, 405s) → `Ai::on_request_body`
//! (parse, route the model, translate, head edits: `:path`, `:authority`, the cluster header, the provider
//! credential in place of the client's) → `Ai::on_response_head` (stream or read whole) →
//! `Ai::on_response_body` (translate) → `AiStream::usage`.
//!
//! Metrics (through `Ports::metrics`), each named `<metric>.provider.<p>.model.<m>.consumer.<c>` with values
//! sanitised to `[A-Za-z0-9_-]`, e.g. `tollgate_ai_input_tokens.provider.claude.model.claude-sonnet-4-5.consumer.alice`:
//! counters `tollgate_ai_requests`, `tollgate_ai_input_tokens`, `tollgate_ai_output_tokens`,
//! `tollgate_ai_cached_tokens`, `tollgate_ai_reasoning_tokens`, `tollgate_ai_errors`; histograms (ms)
//! `tollgate_ai_upstream_latency_ms` (request sent → response head) and `tollgate_ai_time_to_first_token_ms`
//! (request sent → first streamed content chunk). The model segment is the client's model name for an exact
//! `ai.models[].name` and the pattern for a wildcard; requests refused before routing count under
//! `provider.none.model.none`; a request without a consumer counts as `anonymous`.

pub mod adapter;
pub mod chat;
pub mod config;
pub mod error;
pub mod gateway;
pub mod messages;
pub mod providers;
pub mod router;
pub mod sse;
pub mod usage;

pub use adapter::{
    Adapter, ChunkSink, EmbeddingsRequest, ProviderSettings, StreamTranslator, Target, Translated,
    UpstreamRequest,
};
pub use config::{RawAiConfig, UnsupportedFields};
pub use error::AiError;
pub use gateway::{
    Ai, AiBody, AiHead, AiRequest, AiResponseHead, AiStream, CallAnswer, Caller, PROVIDER_HEADER,
};
pub use sse::{EventDecoder, SseEvent, SseParser};
pub use usage::Usage;

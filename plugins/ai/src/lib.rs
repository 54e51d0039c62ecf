//! Tollgate's AI gateway: clients speak the OpenAI API (`/v1/chat/completions`, `/v1/embeddings`,
//! `/v1/models`); the config's `ai` section picks a provider per model and this crate translates requests,
//! responses and SSE streams to and from each provider's wire format, reporting usage as it goes.
//! Owns the `ai` config section.

pub mod adapter;
pub mod chat;
pub mod error;
pub mod providers;
pub mod sse;
pub mod usage;

pub use adapter::{
    Adapter, ChunkSink, EmbeddingsRequest, ProviderSettings, StreamTranslator, Target, Translated,
    UpstreamRequest,
};
pub use error::AiError;
pub use usage::Usage;

//! One module per provider wire format, and the `kind` names the config uses for them.

mod anthropic;
mod azure;
mod bedrock;
mod gemini;
mod mistral;
mod openai;
mod openai_wire;

pub use anthropic::AnthropicAdapter;
pub use azure::AzureAdapter;
pub use bedrock::{event_stream_encode, AwsCredentials, BedrockAdapter, EventStreamDecoder};
pub use gemini::GeminiAdapter;
pub use mistral::MistralAdapter;
pub use openai::OpenAiAdapter;

use crate::adapter::{Adapter, ProviderSettings};

/// `ai.providers[].kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Azure,
    Anthropic,
    Gemini,
    Mistral,
    /// Groq, DeepSeek, Together, Ollama, vLLM, llama.cpp server, ...: OpenAI's wire format under a
    /// configurable path prefix.
    OpenaiCompatible,
    /// Amazon Bedrock's Converse API, signed with SigV4.
    Bedrock,
}

impl ProviderKind {
    /// The adapter for this kind.
    pub fn adapter(self, settings: ProviderSettings) -> Box<dyn Adapter> {
        match self {
            ProviderKind::Openai => Box::new(OpenAiAdapter::new(settings, false)),
            ProviderKind::OpenaiCompatible => Box::new(OpenAiAdapter::new(settings, true)),
            ProviderKind::Azure => Box::new(AzureAdapter::new(settings)),
            ProviderKind::Anthropic => Box::new(AnthropicAdapter::new(settings)),
            ProviderKind::Gemini => Box::new(GeminiAdapter::new(settings)),
            ProviderKind::Mistral => Box::new(MistralAdapter::new(settings)),
            ProviderKind::Bedrock => Box::new(BedrockAdapter::new(settings)),
        }
    }

    /// The `base_url` used when the config gives none (Bedrock's depends on the region: see the config).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Mistral => Some("https://api.mistral.ai/v1"),
            ProviderKind::Azure | ProviderKind::OpenaiCompatible | ProviderKind::Bedrock => None,
        }
    }
}

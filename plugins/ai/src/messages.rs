//! Anthropic's Messages API as an ingress: `POST /v1/messages` and `POST /v1/messages/count_tokens` from
//! Anthropic-speaking clients (the `anthropic` SDKs, coding agents), served by any provider.
//!
//! To an Anthropic provider the request goes as it is (only the model name and credential change) and its
//! answer comes back untouched. To every other provider it goes through the same adapters as OpenAI
//! requests: the Messages request becomes a `ChatRequest` (`request`), and the OpenAI-shaped answer the
//! adapter produces becomes a Messages answer again (`response`), or, streamed, Anthropic's named events
//! (`stream`). Errors reach these clients in Anthropic's error shape (`errors`).

mod errors;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

pub use errors::{anthropic_error_json, to_anthropic_reply};
pub use request::{estimate_input_tokens, to_chat_request, MessagesRequest};
pub use response::message_from_completion;
pub use stream::MessagesEncoder;

/// The Messages endpoint.
pub const MESSAGES_PATH: &str = "/v1/messages";
/// The token-counting endpoint.
pub const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";

/// Whether a path is one of Anthropic's endpoints, whose clients get Anthropic-shaped errors.
pub fn is_anthropic_path(path: &str) -> bool {
    path == MESSAGES_PATH || path.starts_with("/v1/messages/")
}

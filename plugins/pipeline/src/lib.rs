//! Tollgate's top-level configuration (the whole filter JSON) and the ordered chain that runs for each
//! request: local replies, then auth, then header edits, then rate limits, then the AI gateway. Owns the
//! config root, `upstream_headers`, `response_headers` and `local_replies`; `auth` belongs to tollgate-auth,
//! `ratelimit` to tollgate-ratelimit and `ai` to tollgate-ai.
//!
//! On an AI route the request head is held until the body is read: auth's model scope is checked against the
//! body's `model` first, then the gateway translates the body and adds its head edits (`:path`,
//! `:authority`, the cluster header, the provider credential). A translated response is either streamed
//! (SSE, translated chunk by chunk) or held and read whole (JSON answers and provider errors, whose status
//! the gateway may rewrite). `Pipeline::usage` reports the tokens a request used.
//!
//! Rate limits decide a request without a model at its head and an AI request once its body is in; tokens
//! and money reserved then are settled at the end of the response body, or released by
//! `Pipeline::on_stream_done` when the stream ends without a complete response.

mod ai_step;
mod authentication;
mod chain;
mod config;
pub mod head_limits;
mod header_rules;
mod limits;
mod local_replies;
mod prompt_step;
pub mod reasons;
pub mod trace;

pub use chain::{BackgroundCall, Pipeline, Stream, USAGE_REPORTS, USAGE_REPORT_ERRORS, USAGE_REPORT_PURPOSE};
pub use config::RawConfig;
pub use prompt_step::{prompt_metric, VERSION_HEADER};

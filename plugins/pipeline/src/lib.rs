//! Tollgate's top-level configuration (the whole filter JSON) and the ordered chain that runs for each
//! request: header edits and local replies today, later auth → limits → ai/prompt. Owns the config root,
//! `upstream_headers`, `response_headers` and `local_replies`.

mod chain;
mod config;
mod header_rules;
mod local_replies;

pub use chain::{BackgroundCall, Pipeline, Stream};
pub use config::RawConfig;

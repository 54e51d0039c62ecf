//! Tollgate's top-level configuration (the whole filter JSON) and the ordered chain that runs for each
//! request: local replies, then auth, then header edits (later limits → ai/prompt). Owns the config root,
//! `upstream_headers`, `response_headers` and `local_replies`; `auth` belongs to tollgate-auth.

mod authentication;
mod chain;
mod config;
mod header_rules;
mod local_replies;

pub use chain::{BackgroundCall, Pipeline, Stream};
pub use config::RawConfig;

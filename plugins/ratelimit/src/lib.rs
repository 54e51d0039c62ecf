//! Rate limits for Tollgate: exact request limits, token limits and currency budgets, per consumer,
//! group, route, model, client IP or header value. Owns the `ratelimit` config section.
//!
//! The pipeline uses it in four steps:
//!
//! 1. `RateLimits::compile(raw, &path)` once per config (errors name the JSON path), then
//!    `RateLimits::prepare(ports)` in `on_configure` to create the store slots before traffic.
//! 2. Per request, once the consumer and (for AI routes) the model and prompt are known, fill a
//!    `RequestFacts` (`estimate_prompt_tokens(body)` for the prompt) and call `check(&facts, ports)`:
//!    - `Decision::Allow { headers, reservation }`: forward; add `headers` to the response;
//!    - `Decision::Limit { reply, .. }`: send `reply` (429 + `Retry-After` + `RateLimit` fields + an
//!      OpenAI-shaped body naming the rule).
//! 3. When the response's `Usage` is known (body end, or stream end), `settle(reservation, &usage, ports)`.
//! 4. When the request dies first, `release(reservation, partial_usage, ports)`.
//!
//! Request limits are GCRA over the `SharedStore` with CAS, so they hold exactly across Envoy's workers.
//! Token and budget rules reserve an estimate before forwarding and settle the real usage after, so
//! concurrent requests cannot overshoot.
//!
//! `mode: global` rules are counted by a rate limit service for a whole fleet (see `global`): before
//! `check`, ask it each of `global_checks(&facts)` (`global_call`, then `global_answer` with the outcome);
//! after the response, `global_settle` gives the call that reports a token rule's remaining usage.

mod config;
mod decision;
mod error;
mod gcra;
mod global;
mod limiter;
pub mod metrics;
mod prices;
mod reservation;
mod rule;
mod slots;
mod window;

pub use config::{
    RawHeaderKey, RawKeyPart, RawRateLimitConfig, RawRule, DEFAULT_MAX_KEYS, DEFAULT_MAX_TOKENS,
};
pub use decision::{Decision, QuotaStatus};
pub use error::{RateLimitError, REASONS};
/// The rate limit service's messages (`envoy.service.ratelimit.v3`), for tests and mock services.
pub use global::proto as rls;
pub use global::{GlobalAnswer, GlobalCheck, RawService, DEFAULT_DOMAIN, DEFAULT_TIMEOUT_MS};
pub use limiter::RateLimits;
pub use prices::{RawPrice, RawPrices};
pub use reservation::Reservation;
pub use rule::{estimate_prompt_tokens, RequestFacts, CHARS_PER_TOKEN};
pub use tollgate_ai::Usage;

#[cfg(test)]
mod tests;

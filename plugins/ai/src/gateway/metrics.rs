//! Metric names per provider, model and consumer, and what is counted when.
//!
//! Names keep Envoy's dotted convention with one segment per value: `<metric>.provider.<p>.model.<m>.consumer.<c>`,
//! e.g. `tollgate_ai_input_tokens.provider.claude.model.claude-sonnet-4-5.consumer.alice`. Values are sanitised
//! (anything but `[A-Za-z0-9_-]` becomes `_`) so no value can add segments. The model is the client's name
//! when it matched an exact `ai.models[].name`, and the matching pattern when it matched a wildcard (so
//! clients cannot create one stat per invented name); requests refused before routing count under provider
//! and model `none`. A request without a consumer counts as `anonymous`.

use std::time::SystemTime;

use tollgate_core::Ports;

use crate::Usage;

/// Counter: requests sent upstream.
pub const REQUESTS: &str = "tollgate_ai_requests";
/// Counters: tokens as the provider reported them (cached ⊂ input, reasoning ⊂ output).
pub const INPUT_TOKENS: &str = "tollgate_ai_input_tokens";
pub const OUTPUT_TOKENS: &str = "tollgate_ai_output_tokens";
pub const CACHED_TOKENS: &str = "tollgate_ai_cached_tokens";
pub const REASONING_TOKENS: &str = "tollgate_ai_reasoning_tokens";
/// Counter: requests that ended in an error, the client's or the provider's.
pub const ERRORS: &str = "tollgate_ai_errors";
/// Histogram (ms): request sent upstream → response head.
pub const UPSTREAM_LATENCY_MS: &str = "tollgate_ai_upstream_latency_ms";
/// Histogram (ms): request sent upstream → first streamed chunk carrying content (streams only).
pub const TIME_TO_FIRST_TOKEN_MS: &str = "tollgate_ai_time_to_first_token_ms";

/// Counter: requests sent to a fallback provider because the ones before it were cooling down.
pub const FAILOVERS: &str = "tollgate_ai_failovers";
/// Counter: provider failures (429, 5xx) that started a cooldown, labelled with the failed request.
pub const COOLDOWNS: &str = "tollgate_ai_cooldowns";
/// Counter: pooled keys refused (401) or throttled (429), which cool down alone.
pub const KEY_COOLDOWNS: &str = "tollgate_ai_key_cooldowns";

/// Every metric prefix, for documentation and dashboards.
pub const METRIC_NAMES: [&str; 11] = [
    REQUESTS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    CACHED_TOKENS,
    REASONING_TOKENS,
    ERRORS,
    UPSTREAM_LATENCY_MS,
    TIME_TO_FIRST_TOKEN_MS,
    FAILOVERS,
    COOLDOWNS,
    KEY_COOLDOWNS,
];

/// The `.provider.<p>.model.<m>.consumer.<c>` suffix of one request's metrics, built once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels(String);

impl Labels {
    pub fn new(provider: &str, model: &str, consumer: Option<&str>) -> Labels {
        let consumer = consumer.unwrap_or("anonymous");
        Labels(format!(
            ".provider.{}.model.{}.consumer.{}",
            segment(provider),
            segment(model),
            segment(consumer)
        ))
    }

    /// For requests refused before a provider was chosen.
    pub fn unrouted(consumer: Option<&str>) -> Labels {
        Labels::new("none", "none", consumer)
    }

    pub fn name(&self, metric: &str) -> String {
        format!("{metric}{}", self.0)
    }

    pub fn count(&self, ports: Ports<'_>, metric: &str) {
        ports.metrics.increment(&self.name(metric), 1);
    }

    pub fn usage(&self, ports: Ports<'_>, usage: &Usage) {
        for (metric, n) in [
            (INPUT_TOKENS, usage.input_tokens),
            (OUTPUT_TOKENS, usage.output_tokens),
            (CACHED_TOKENS, usage.cached_input_tokens),
            (REASONING_TOKENS, usage.reasoning_tokens),
        ] {
            if n > 0 {
                ports.metrics.increment(&self.name(metric), i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Records the milliseconds since `since` (0 when the clock went backwards).
    pub fn elapsed(&self, ports: Ports<'_>, metric: &str, since: SystemTime) {
        let ms = ports.clock.now().duration_since(since).map_or(0, |d| d.as_millis());
        ports.metrics.record(&self.name(metric), u64::try_from(ms).unwrap_or(u64::MAX));
    }
}

fn segment(value: &str) -> String {
    value.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_add_segments() {
        let labels = Labels::new("claude", "claude-sonnet-4.5", Some("alice@corp"));
        assert_eq!(
            labels.name(INPUT_TOKENS),
            "tollgate_ai_input_tokens.provider.claude.model.claude-sonnet-4_5.consumer.alice_corp"
        );
        assert_eq!(
            Labels::unrouted(None).name(ERRORS),
            "tollgate_ai_errors.provider.none.model.none.consumer.anonymous"
        );
    }
}

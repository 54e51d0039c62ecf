use tollgate_core::{LocalReply, Reason};

/// Every reason code a rate-limit refusal carries.
pub const REASONS: &[Reason] = &[
    Reason {
        code: "rate_limited",
        status: 429,
        meaning:
            "a request rule (local or global) has no room for this request, or is too contended to decide",
        action: "wait Retry-After seconds; RateLimit-Policy names the rule and its quota",
    },
    Reason {
        code: "token_limit",
        status: 429,
        meaning: "a token rule cannot hold this request's estimate (prompt plus max_tokens)",
        action:
            "wait Retry-After seconds, or ask for fewer max_tokens; the message says how many tokens are left",
    },
    Reason {
        code: "budget_exceeded",
        status: 429,
        meaning: "a currency budget cannot hold what this request may cost",
        action: "wait for the next budget window, or raise the budget in ratelimit.rules",
    },
    Reason {
        code: "model_not_priced",
        status: 403,
        meaning: "a budget applies but ratelimit.prices has no price for the requested model",
        action: "operator: add the model (or a \"*\" entry) to ratelimit.prices.models",
    },
    Reason {
        code: "rate_limit_service_unavailable",
        status: 503,
        meaning: "a fail-closed global rule got no answer from the rate limit service in time",
        action: "retry; operator: check the service and ratelimit.service.cluster, or timeout_ms",
    },
];

/// Why a request was refused. Every variant names the rule, so an operator can find it in the config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit {rule:?} exceeded: {limit} requests per {per}")]
    Requests { rule: String, limit: u64, per: &'static str },
    #[error("token limit {rule:?} exceeded: this request may use {wanted} tokens, {left} of {limit} left this {per}")]
    Tokens { rule: String, wanted: u64, left: u64, limit: u64, per: &'static str },
    #[error("budget {rule:?} exceeded: this request may cost {wanted}, {left} of {limit} left this {per}")]
    Budget { rule: String, wanted: String, left: String, limit: String, per: &'static str },
    /// A budget applies but the price table has no price for the model, so its cost cannot be known.
    #[error("budget {rule:?} cannot admit model {model:?}: it has no price")]
    Unpriced { rule: String, model: String },
    /// Other workers kept winning the store's CAS for this key; refused rather than admitted unchecked.
    #[error("rate limit {rule:?} is too busy to decide; retry shortly")]
    Contended { rule: String },
    /// The rate limit service says a global request rule is over its limit.
    #[error("rate limit {rule:?} exceeded (counted across the fleet by the rate limit service)")]
    Global { rule: String },
    /// The rate limit service says a global token rule has no room for this request's prompt.
    #[error("token limit {rule:?} exceeded (counted across the fleet by the rate limit service): this request's prompt is about {wanted} tokens")]
    GlobalTokens { rule: String, wanted: u64 },
    /// A fail-closed global rule got no answer from the rate limit service in time.
    #[error("rate limit {rule:?} cannot be checked: the rate limit service did not answer; retry shortly")]
    ServiceUnavailable { rule: String },
    /// Every slot this key may use belongs to another active key (see `SlotRing`).
    #[error("rate limit {rule:?} is tracking too many clients; retry shortly")]
    KeySpaceFull { rule: String },
}

impl RateLimitError {
    pub fn status(&self) -> u16 {
        match self {
            RateLimitError::Unpriced { .. } => 403,
            RateLimitError::ServiceUnavailable { .. } => 503,
            _ => 429,
        }
    }

    /// The stable `error.code` of the reply.
    pub fn code(&self) -> &'static str {
        match self {
            RateLimitError::Requests { .. } | RateLimitError::Contended { .. } => "rate_limited",
            RateLimitError::KeySpaceFull { .. } | RateLimitError::Global { .. } => "rate_limited",
            RateLimitError::Tokens { .. } | RateLimitError::GlobalTokens { .. } => "token_limit",
            RateLimitError::ServiceUnavailable { .. } => "rate_limit_service_unavailable",
            RateLimitError::Budget { .. } => "budget_exceeded",
            RateLimitError::Unpriced { .. } => "model_not_priced",
        }
    }

    /// The `error.type` of the reply, in OpenAI's vocabulary.
    pub fn kind(&self) -> &'static str {
        match self {
            RateLimitError::Unpriced { .. } => "invalid_request_error",
            RateLimitError::ServiceUnavailable { .. } => "server_error",
            _ => "rate_limit_error",
        }
    }

    pub fn rule(&self) -> &str {
        match self {
            RateLimitError::Requests { rule, .. }
            | RateLimitError::Tokens { rule, .. }
            | RateLimitError::Budget { rule, .. }
            | RateLimitError::Unpriced { rule, .. }
            | RateLimitError::Contended { rule }
            | RateLimitError::KeySpaceFull { rule }
            | RateLimitError::Global { rule }
            | RateLimitError::GlobalTokens { rule, .. }
            | RateLimitError::ServiceUnavailable { rule } => rule,
        }
    }

    /// Every variant, one of each, so tests can hold the codes against `REASONS`.
    #[cfg(test)]
    pub(crate) fn samples() -> Vec<RateLimitError> {
        let rule = || "r".to_string();
        let all = vec![
            RateLimitError::Requests { rule: rule(), limit: 1, per: "minute" },
            RateLimitError::Tokens { rule: rule(), wanted: 2, left: 1, limit: 1, per: "hour" },
            RateLimitError::Budget {
                rule: rule(),
                wanted: "2".into(),
                left: "1".into(),
                limit: "1".into(),
                per: "day",
            },
            RateLimitError::Unpriced { rule: rule(), model: "m".into() },
            RateLimitError::Global { rule: rule() },
            RateLimitError::GlobalTokens { rule: rule(), wanted: 1 },
            RateLimitError::ServiceUnavailable { rule: rule() },
            RateLimitError::Contended { rule: rule() },
            RateLimitError::KeySpaceFull { rule: rule() },
        ];
        // A new variant must be added above: this match has no catch-all.
        for error in &all {
            match error {
                RateLimitError::Requests { .. }
                | RateLimitError::Tokens { .. }
                | RateLimitError::Budget { .. }
                | RateLimitError::Unpriced { .. }
                | RateLimitError::Global { .. }
                | RateLimitError::GlobalTokens { .. }
                | RateLimitError::ServiceUnavailable { .. }
                | RateLimitError::Contended { .. }
                | RateLimitError::KeySpaceFull { .. } => {}
            }
        }
        all
    }

    /// The reply: OpenAI-shaped JSON, plus `Retry-After` (seconds) and any rate-limit header fields.
    pub fn reply(&self, retry_after: Option<u64>, headers: Vec<(String, String)>) -> LocalReply {
        let mut reply = LocalReply::error(self.status(), self.kind(), self.code(), &self.to_string());
        if let Some(secs) = retry_after {
            reply.headers.push(("retry-after".into(), secs.max(1).to_string()));
        }
        reply.headers.extend(headers);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_names_a_documented_reason_with_its_status() {
        for error in RateLimitError::samples() {
            let reason = REASONS.iter().find(|r| r.code == error.code());
            let reason = reason.unwrap_or_else(|| panic!("{:?} is not in REASONS", error.code()));
            assert_eq!(reason.status, error.status(), "{error:?}");
            let reply = error.reply(Some(1), Vec::new());
            assert_eq!(reply.reason(), Some(error.code()));
        }
        for reason in REASONS {
            assert!(
                RateLimitError::samples().iter().any(|e| e.code() == reason.code),
                "{} is never produced",
                reason.code
            );
        }
    }
}

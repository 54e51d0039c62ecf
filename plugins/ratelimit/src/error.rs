use tollgate_core::LocalReply;

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

//! Global rules: limits one rate limit service counts for a whole fleet of Envoys. For each global rule that
//! applies, the filter asks the service (Envoy's `ShouldRateLimit` over gRPC, through an Envoy cluster) with
//! one descriptor — `rule` plus the rule's key parts — and `hits_addend`: 1 for a request rule; for a token
//! rule the estimated prompt tokens before forwarding, then the rest of the real usage once it is known.
//! The service holds each limit's size and window; Tollgate's config only says what a rule counts and what
//! to do when the service cannot answer in time (`failure_mode`: open admits, closed refuses with 503).

pub mod proto;

use std::time::Duration;

use prost::Message as _;
use serde::Deserialize;
use tollgate_ai::Usage;
use tollgate_core::{CallOutcome, ConfigError, ConfigPath, GrpcCall, LocalReply, Ports};

use crate::decision::{header_fields, QuotaStatus};
use crate::error::RateLimitError;
use crate::limiter::RateLimits;
use crate::rule::{Limit, RequestFacts, Rule};
use proto::{Entry, RateLimitDescriptor, RateLimitRequest, RateLimitResponse, CODE_OVER_LIMIT};

pub const DEFAULT_DOMAIN: &str = "tollgate";
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
const MAX_TIMEOUT_MS: u64 = 60_000;

/// `ratelimit.service` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// The Envoy cluster of the rate limit service (HTTP/2).
    pub cluster: String,
    /// The service's domain for Tollgate's limits (`tollgate` when absent).
    #[serde(default)]
    pub domain: Option<String>,
    /// How long a request waits for the service before its rules' `failure_mode` applies.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub cluster: String,
    pub domain: String,
    pub timeout: Duration,
}

impl Service {
    pub fn compile(raw: RawService, at: &ConfigPath) -> Result<Service, ConfigError> {
        if raw.cluster.is_empty() {
            return Err(at.field("cluster").error("must name the Envoy cluster of the rate limit service"));
        }
        let domain = raw.domain.unwrap_or_else(|| DEFAULT_DOMAIN.to_string());
        if domain.is_empty() {
            return Err(at.field("domain").error("must not be empty"));
        }
        let timeout =
            Service::timeout(raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS), &at.field("timeout_ms"))?;
        Ok(Service { cluster: raw.cluster, domain, timeout })
    }

    pub fn timeout(ms: u64, at: &ConfigPath) -> Result<Duration, ConfigError> {
        if ms == 0 || ms > MAX_TIMEOUT_MS {
            return Err(at.error(format!("must be 1 to {MAX_TIMEOUT_MS} milliseconds")));
        }
        Ok(Duration::from_millis(ms))
    }
}

/// What each request adds to a global rule's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counts {
    Requests,
    Tokens,
}

/// What a global rule does when the service fails or does not answer within the timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    Open,
    Closed,
}

#[derive(Clone, Debug)]
pub struct GlobalLimit {
    pub counts: Counts,
    pub failure_mode: FailureMode,
    pub timeout: Duration,
}

/// One global rule's question to the service about one request; kept until the request ends, since a token
/// rule reports the rest of the real usage with the same descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalCheck {
    rule: String,
    entries: Vec<(String, String)>,
    /// What the question adds to the counter.
    hits: u64,
}

impl GlobalCheck {
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// The service's answer about one rule, as the request sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum GlobalAnswer {
    /// The rule admits the request; `headers` are its `RateLimit` fields (when configured and known).
    Admit { headers: Vec<(String, String)> },
    /// Answer the client with this reply (429 over the limit, 503 when a fail-closed rule got no answer).
    Refuse(LocalReply),
}

impl RateLimits {
    /// Whether any rule is global (so a request may wait for the service).
    pub fn has_global_rules(&self) -> bool {
        self.rules.iter().any(|rule| matches!(rule.limit, Limit::Global(_)))
    }

    /// Whether some global rule counts tokens, whose usage is reported after responses (`global_settle`).
    pub fn reports_usage(&self) -> bool {
        self.rules.iter().any(|rule| matches!(&rule.limit, Limit::Global(g) if g.counts == Counts::Tokens))
    }

    /// The questions to ask the service about this request, one per global rule that applies, in rule order.
    pub fn global_checks(&self, facts: &RequestFacts<'_>) -> Vec<GlobalCheck> {
        let mut checks = Vec::new();
        for rule in &self.rules {
            let Limit::Global(global) = &rule.limit else { continue };
            let Some(values) = rule.key_values(facts) else { continue };
            let mut entries = Vec::with_capacity(values.len() + 1);
            entries.push(("rule".to_string(), rule.name.clone()));
            entries.extend(values.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let hits = match global.counts {
                Counts::Requests => 1,
                // The prompt is spent whatever the model answers; the output is charged once it is known.
                Counts::Tokens => facts.prompt_tokens.max(1),
            };
            checks.push(GlobalCheck { rule: rule.name.clone(), entries, hits });
        }
        checks
    }

    /// The `ShouldRateLimit` call that asks `check` (`None` only if the rule has gone, which cannot happen
    /// within one configuration).
    pub fn global_call(&self, check: &GlobalCheck) -> Option<GrpcCall> {
        self.call_with_hits(check, check.hits)
    }

    fn call_with_hits(&self, check: &GlobalCheck, hits: u64) -> Option<GrpcCall> {
        let service = self.service.as_ref()?;
        let (_, global) = self.global_rule(&check.rule)?;
        let entries =
            check.entries.iter().map(|(key, value)| Entry { key: key.clone(), value: value.clone() });
        let request = RateLimitRequest {
            domain: service.domain.clone(),
            descriptors: vec![RateLimitDescriptor { entries: entries.collect() }],
            hits_addend: u32::try_from(hits).unwrap_or(u32::MAX).max(1),
        };
        Some(GrpcCall {
            cluster: service.cluster.clone(),
            service: proto::SERVICE.to_string(),
            method: proto::METHOD.to_string(),
            message: request.encode_to_vec(),
            timeout: global.timeout,
        })
    }

    fn global_rule(&self, name: &str) -> Option<(&Rule, &GlobalLimit)> {
        self.rules.iter().find(|rule| rule.name == name).and_then(|rule| match &rule.limit {
            Limit::Global(global) => Some((rule, global)),
            _ => None,
        })
    }

    /// Reads the service's answer to `check` and decides the rule: over the limit refuses (unless the rule
    /// is a shadow); no usable answer applies the rule's failure mode.
    pub fn global_answer(
        &self,
        check: &GlobalCheck,
        outcome: &CallOutcome,
        ports: Ports<'_>,
    ) -> GlobalAnswer {
        let Some((rule, global)) = self.global_rule(&check.rule) else {
            return GlobalAnswer::Admit { headers: Vec::new() };
        };
        let response = match outcome.ok_body().map(RateLimitResponse::decode) {
            Some(Ok(response)) => response,
            failed => {
                ports.metrics.increment(&rule.metric("service_errors"), 1);
                let reason = match (failed, outcome) {
                    (Some(Err(e)), _) => format!("unreadable answer: {e}"),
                    (_, CallOutcome::Failed { reason }) => reason.clone(),
                    (_, CallOutcome::Response { status, .. }) => format!("HTTP status {status}"),
                };
                log::warn!("rate limit service: no answer for rule {} ({reason})", rule.name);
                return match global.failure_mode {
                    FailureMode::Closed if !rule.shadow => {
                        ports.metrics.increment(&rule.metric("failed_closed"), 1);
                        let error = RateLimitError::ServiceUnavailable { rule: rule.name.clone() };
                        GlobalAnswer::Refuse(error.reply(Some(1), Vec::new()))
                    }
                    _ => {
                        ports.metrics.increment(&rule.metric("failed_open"), 1);
                        GlobalAnswer::Admit { headers: Vec::new() }
                    }
                };
            }
        };
        let status = response.statuses.first();
        let quota = status.and_then(|s| quota_status(&rule.name, s));
        let fields = |quota: Option<QuotaStatus<'_>>| header_fields(&quota.into_iter().collect::<Vec<_>>());
        if response.overall_code != CODE_OVER_LIMIT {
            ports.metrics.count(&rule.allowed_metric, 1);
            let headers =
                if self.headers && global.counts == Counts::Requests { fields(quota) } else { Vec::new() };
            return GlobalAnswer::Admit { headers };
        }
        if rule.shadow {
            ports.metrics.increment(&rule.metric("shadow_limited"), 1);
            return GlobalAnswer::Admit { headers: Vec::new() };
        }
        ports.metrics.increment(&rule.metric("limited"), 1);
        let retry_after = status
            .and_then(|s| s.duration_until_reset.as_ref())
            .map(|d| u64::try_from(d.seconds).unwrap_or(0) + u64::from(d.nanos > 0))
            .unwrap_or(1);
        let error = match global.counts {
            Counts::Requests => RateLimitError::Global { rule: rule.name.clone() },
            Counts::Tokens => RateLimitError::GlobalTokens { rule: rule.name.clone(), wanted: check.hits },
        };
        let headers = if global.counts == Counts::Requests { fields(quota) } else { Vec::new() };
        GlobalAnswer::Refuse(error.reply(Some(retry_after), headers))
    }

    /// The call that reports the rest of a token rule's real usage once the response is over (the prompt
    /// estimate was added when it was admitted); `None` when nothing is left to add or the rule counts
    /// requests. The answer only matters for the counter: the request is already served.
    pub fn global_settle(&self, check: &GlobalCheck, usage: &Usage, ports: Ports<'_>) -> Option<GrpcCall> {
        let (rule, global) = self.global_rule(&check.rule)?;
        if global.counts != Counts::Tokens {
            return None;
        }
        let rest = usage.total().checked_sub(check.hits).filter(|rest| *rest > 0)?;
        ports.metrics.increment(&rule.metric("tokens_reported"), i64::try_from(rest).unwrap_or(i64::MAX));
        self.call_with_hits(check, rest)
    }
}

/// The rule's `RateLimit` fields from the service's status for its descriptor, when it says its limit.
fn quota_status<'r>(rule: &'r str, status: &proto::DescriptorStatus) -> Option<QuotaStatus<'r>> {
    let limit = status.current_limit.as_ref()?;
    let reset = status.duration_until_reset.as_ref().map_or(0, |d| u64::try_from(d.seconds).unwrap_or(0));
    Some(QuotaStatus {
        rule,
        quota: u64::from(limit.requests_per_unit),
        window_secs: limit.unit_seconds()?,
        remaining: u64::from(status.limit_remaining),
        reset_secs: reset,
    })
}

#[cfg(test)]
#[path = "global/tests.rs"]
mod tests;

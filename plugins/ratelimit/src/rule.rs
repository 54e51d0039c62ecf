//! A compiled rule: which requests it applies to, how they are keyed, and what it limits.

use tollgate_core::{Headers, Metric, RequestHead};

use crate::gcra::Gcra;
use crate::global::{Counts, GlobalLimit};
use crate::slots::{identity_hash, SlotRing};
use crate::window::Period;

/// What a rule counts.
#[derive(Clone, Debug)]
pub enum Limit {
    /// `limit` requests per `period`, at most `burst` back to back.
    Requests { gcra: Gcra, limit: u64, period: Period },
    /// `limit` tokens (input + output) per calendar `period`.
    Tokens { limit: u64, period: Period },
    /// `limit` micro-units of currency per calendar `period`.
    Budget { limit: u64, period: Period },
    /// Counted by the rate limit service, which holds the limit and the window.
    Global(GlobalLimit),
}

/// One component of a rule's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPart {
    Consumer,
    Group,
    /// The configured route prefix the path matched.
    Route,
    Model,
    ClientIp,
    /// A request header's value (name lower-cased).
    Header(String),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub key: Vec<KeyPart>,
    /// Path prefixes the rule applies to; empty: every path.
    pub routes: Vec<String>,
    pub limit: Limit,
    pub shadow: bool,
    pub ring: SlotRing,
    /// `metric("allowed")`, counted on every admitted request, so built once.
    pub allowed_metric: Metric,
}

/// What the limiter needs to know about a request. The pipeline fills it from the head, from auth's
/// consumer and from the AI plugin's parse of the body.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// Path without the query string.
    pub path: &'a str,
    pub headers: &'a Headers,
    pub consumer: Option<&'a str>,
    pub group: Option<&'a str>,
    pub model: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    /// Estimated prompt tokens (`estimate_prompt_tokens`); only token and budget rules read it.
    pub prompt_tokens: u64,
    /// The request's `max_tokens` (or equivalent); absent: the configured `default_max_tokens`.
    pub max_tokens: Option<u64>,
}

impl<'a> RequestFacts<'a> {
    /// Facts from the head alone; the caller fills in what other plugins learned.
    pub fn new(head: &'a RequestHead) -> Self {
        RequestFacts {
            path: head.path_only(),
            headers: &head.headers,
            consumer: None,
            group: None,
            model: None,
            client_ip: None,
            prompt_tokens: 0,
            max_tokens: None,
        }
    }
}

/// The counter `tollgate_ratelimit.rule.<rule>.<event>`.
pub fn rule_metric(rule: &str, event: &str) -> String {
    format!("tollgate_ratelimit.rule.{rule}.{event}")
}

/// Roughly four characters of English text per token for GPT-style tokenizers. Counting characters of the
/// whole JSON body over-estimates a little (keys, punctuation), which errs towards holding too much; the
/// settlement refunds the difference.
pub const CHARS_PER_TOKEN: u64 = 4;

/// An upper-leaning estimate of the prompt tokens in a request body.
pub fn estimate_prompt_tokens(body: &[u8]) -> u64 {
    let chars = String::from_utf8_lossy(body).chars().count();
    u64::try_from(chars).unwrap_or(u64::MAX).div_ceil(CHARS_PER_TOKEN)
}

impl Rule {
    /// The hash identifying this request's counter, or `None` when the rule does not apply: the path is
    /// outside its routes, a key part is missing, or it counts tokens or money and the request has no model.
    pub fn identity(&self, facts: &RequestFacts<'_>) -> Option<u64> {
        let values = self.key_values(facts)?;
        let mut parts = Vec::with_capacity(values.len() + 1);
        parts.push(self.name.as_str());
        parts.extend(values.iter().map(|(_, value)| *value));
        Some(identity_hash(&parts))
    }

    /// The key's parts as (label, value) pairs, `None` when the rule does not apply (as for `identity`).
    /// Labels are the key part's name (`consumer`, `model`, ...) or a header's name.
    pub fn key_values<'f>(&'f self, facts: &RequestFacts<'f>) -> Option<Vec<(&'f str, &'f str)>> {
        let route = if self.routes.is_empty() {
            ""
        } else {
            self.routes.iter().find(|prefix| facts.path.starts_with(prefix.as_str()))?
        };
        if self.counts_usage() && facts.model.is_none() {
            return None;
        }
        let mut values = Vec::with_capacity(self.key.len());
        for part in &self.key {
            values.push(match part {
                KeyPart::Consumer => ("consumer", facts.consumer?),
                KeyPart::Group => ("group", facts.group?),
                KeyPart::Route => ("route", route),
                KeyPart::Model => ("model", facts.model?),
                KeyPart::ClientIp => ("client_ip", facts.client_ip?),
                KeyPart::Header(name) => (name.as_str(), facts.headers.get(name)?),
            });
        }
        Some(values)
    }

    /// Whether the rule counts tokens or money, which only AI requests (those naming a model) spend.
    pub fn counts_usage(&self) -> bool {
        match &self.limit {
            Limit::Requests { .. } => false,
            Limit::Tokens { .. } | Limit::Budget { .. } => true,
            Limit::Global(global) => global.counts == Counts::Tokens,
        }
    }

    /// The stat name of one of this rule's events.
    pub fn metric(&self, event: &str) -> String {
        rule_metric(&self.name, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_estimates_round_up_and_count_characters() {
        assert_eq!(estimate_prompt_tokens(b""), 0);
        assert_eq!(estimate_prompt_tokens(b"abcde"), 2);
        assert_eq!(estimate_prompt_tokens("ééééé".as_bytes()), 2, "characters, not bytes");
    }
}

//! The `ratelimit` section as the operator writes it, and its compilation into `RateLimits`.

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath, Metric};

use crate::gcra::Gcra;
use crate::global::{Counts, FailureMode, GlobalLimit, RawService, Service};
use crate::limiter::RateLimits;
use crate::prices::{PriceTable, RawPrices};
use crate::rule::{rule_metric, KeyPart, Limit, Rule};
use crate::slots::SlotRing;
use crate::window::{Period, NANOS_PER_SEC};

/// Reserved for a request that does not say how many tokens it may generate.
pub const DEFAULT_MAX_TOKENS: u64 = 4_096;
pub const DEFAULT_MAX_KEYS: u32 = 1_024;
const MAX_MAX_KEYS: u32 = 65_536;
/// Request headers whose values are secrets (lower case).
const CREDENTIAL_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimitConfig {
    /// Every rule that applies to a request must admit it.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub prices: RawPrices,
    /// Currency name used in budget messages, e.g. `USD`.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// Send `RateLimit-Policy` / `RateLimit` on admitted requests too (429s always carry them).
    #[serde(default)]
    pub headers: bool,
    /// Send `x-tollgate-cost` (what the answer cost, from `prices`) on answers read whole.
    #[serde(default)]
    pub cost_header: bool,
    /// The rate limit service that `mode: global` rules ask.
    #[serde(default)]
    pub service: Option<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    /// Empty: one counter shared by every request the rule applies to.
    #[serde(default)]
    pub key: Vec<RawKeyPart>,
    /// Path prefixes the rule applies to; absent: all paths.
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub requests: Option<u64>,
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Currency units per `per`.
    #[serde(default)]
    pub budget: Option<f64>,
    /// Required for local rules; a global rule's window is set in the rate limit service.
    #[serde(default)]
    pub per: Option<String>,
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default)]
    pub shadow: bool,
    /// `local` (default): counted in this Envoy's shared data. `global`: asked of the rate limit service
    /// (`service`), so every Envoy of a fleet shares the count.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub max_keys: Option<u32>,
    /// Global rules: `requests` (default) or `tokens`, what each request adds to the service's counter.
    #[serde(default)]
    pub counts: Option<String>,
    /// Global rules: `open` (default) admits, `closed` refuses with 503, when the service fails or is slow.
    #[serde(default)]
    pub failure_mode: Option<String>,
    /// Global rules: how long to wait for the service, overriding `service.timeout_ms`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// `"consumer"`, `"group"`, `"route"`, `"model"`, `"client_ip"` or `{"header": "x-team"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawKeyPart {
    Named(String),
    Header(RawHeaderKey),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderKey {
    pub header: String,
}

impl RateLimits {
    /// Compiles the `ratelimit` section found at `path`.
    pub fn compile(raw: RawRateLimitConfig, path: &ConfigPath) -> Result<RateLimits, ConfigError> {
        let service = raw.service.map(|s| Service::compile(s, &path.field("service"))).transpose()?;
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let at = path.field("rules").index(i);
            let rule = compile_rule(rule, service.as_ref(), &at)?;
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(at.field("name").error(format!("rule {:?} is declared twice", rule.name)));
            }
            rules.push(rule);
        }
        let prices = PriceTable::compile(raw.prices, &path.field("prices"))?;
        let default_max_tokens = raw.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if default_max_tokens == 0 {
            return Err(path.field("default_max_tokens").error("must be > 0"));
        }
        let currency = raw.currency.unwrap_or_default();
        if currency.len() > 16 || !currency.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(path.field("currency").error("must be up to 16 letters or digits, e.g. USD"));
        }
        let limits = RateLimits::new(rules, prices, currency, default_max_tokens, raw.headers, service);
        Ok(limits.with_cost_header(raw.cost_header))
    }
}

fn compile_rule(raw: RawRule, service: Option<&Service>, at: &ConfigPath) -> Result<Rule, ConfigError> {
    check_name(&raw.name, &at.field("name"))?;
    let global = match raw.mode.as_deref() {
        None | Some("local") => false,
        Some("global") => true,
        Some(other) => return Err(at.field("mode").error(format!("unknown mode {other:?} (local, global)"))),
    };
    let limit = if global { global_limit(&raw, service, at)? } else { local_limit(&raw, at)? };
    let routes = raw.routes;
    for (j, route) in routes.iter().enumerate() {
        if !route.starts_with('/') {
            return Err(at.field("routes").index(j).error("must be a path prefix starting with /"));
        }
    }
    let key = raw
        .key
        .into_iter()
        .enumerate()
        .map(|(j, part)| compile_key_part(part, &routes, &at.field("key").index(j)))
        .collect::<Result<Vec<_>, _>>()?;
    // A global rule sends its key's values to the rate limit service (and its store) as they are: a header
    // that carries credentials must not become one. Local rules only keep a hash.
    if global {
        for (j, part) in key.iter().enumerate() {
            if let KeyPart::Header(name) = part {
                if CREDENTIAL_HEADERS.contains(&name.as_str()) {
                    return Err(at.field("key").index(j).field("header").error(format!(
                        "{name} carries credentials, which a global rule would send to the rate limit service; key by consumer instead"
                    )));
                }
            }
        }
    }
    let max_keys = match raw.max_keys {
        Some(n) if n == 0 || n > MAX_MAX_KEYS => {
            return Err(at.field("max_keys").error(format!("must be 1 to {MAX_MAX_KEYS}")));
        }
        Some(n) => n,
        // Without a key there is one counter (per route, at most one per listed prefix).
        None if key.is_empty() || key == [KeyPart::Route] => u32::try_from(routes.len()).unwrap_or(1).max(1),
        None => DEFAULT_MAX_KEYS,
    };
    Ok(Rule {
        ring: SlotRing::new(&raw.name, max_keys),
        allowed_metric: Metric::owned(rule_metric(&raw.name, "allowed")),
        name: raw.name,
        key,
        routes,
        limit,
        shadow: raw.shadow,
    })
}

/// A global rule says what it counts and how to fail; its size and window live in the service.
fn global_limit(raw: &RawRule, service: Option<&Service>, at: &ConfigPath) -> Result<Limit, ConfigError> {
    let Some(service) = service else {
        return Err(at.field("mode").error("a global rule needs ratelimit.service (the rate limit service)"));
    };
    let local_only = [
        ("requests", raw.requests.is_some()),
        ("tokens", raw.tokens.is_some()),
        ("budget", raw.budget.is_some()),
        ("per", raw.per.is_some()),
        ("burst", raw.burst.is_some()),
        ("max_keys", raw.max_keys.is_some()),
    ];
    if let Some((field, _)) = local_only.iter().find(|(_, set)| *set) {
        return Err(at.field(field).error(
            "applies to local rules only: a global rule's limit and window are set in the rate limit service",
        ));
    }
    let counts = match raw.counts.as_deref() {
        None | Some("requests") => Counts::Requests,
        Some("tokens") => Counts::Tokens,
        Some(other) => return Err(at.field("counts").error(format!("unknown {other:?} (requests, tokens)"))),
    };
    let failure_mode = match raw.failure_mode.as_deref() {
        None | Some("open") => FailureMode::Open,
        Some("closed") => FailureMode::Closed,
        Some(other) => {
            return Err(at.field("failure_mode").error(format!("unknown {other:?} (open, closed)")));
        }
    };
    let timeout = match raw.timeout_ms {
        Some(ms) => Service::timeout(ms, &at.field("timeout_ms"))?,
        None => service.timeout,
    };
    Ok(Limit::Global(GlobalLimit { counts, failure_mode, timeout }))
}

fn local_limit(raw: &RawRule, at: &ConfigPath) -> Result<Limit, ConfigError> {
    let global_only = [
        ("counts", raw.counts.is_some()),
        ("failure_mode", raw.failure_mode.is_some()),
        ("timeout_ms", raw.timeout_ms.is_some()),
    ];
    if let Some((field, _)) = global_only.iter().find(|(_, set)| *set) {
        return Err(at.field(field).error("applies to global rules only (\"mode\": \"global\")"));
    }
    let per_at = at.field("per");
    let per =
        raw.per.as_deref().ok_or_else(|| per_at.error("is required: second, minute, hour, day or month"))?;
    let period = Period::parse(per).ok_or_else(|| per_at.error("unknown unit"))?;
    let limit = match (raw.requests, raw.tokens, raw.budget) {
        (Some(limit), None, None) => {
            allow_units(
                period,
                &[Period::Second, Period::Minute, Period::Hour, Period::Day],
                "requests",
                &per_at,
            )?;
            positive(limit, &at.field("requests"))?;
            let burst = raw.burst.unwrap_or(limit);
            positive(burst, &at.field("burst"))?;
            let period_ns = period.seconds().saturating_mul(NANOS_PER_SEC);
            if limit > period_ns {
                return Err(at.field("requests").error("is more than one per nanosecond"));
            }
            Limit::Requests { gcra: Gcra::new(limit, period_ns, burst), limit, period }
        }
        (None, Some(limit), None) => {
            allow_units(period, &[Period::Minute, Period::Hour, Period::Day], "tokens", &per_at)?;
            positive(limit, &at.field("tokens"))?;
            Limit::Tokens { limit, period }
        }
        (None, None, Some(amount)) => {
            allow_units(period, &[Period::Day, Period::Month], "budget", &per_at)?;
            if !amount.is_finite() || amount <= 0.0 || amount > 1e12 {
                return Err(at.field("budget").error("must be an amount > 0"));
            }
            // Bounded above, so the cast cannot saturate.
            Limit::Budget { limit: (amount * 1e6).round() as u64, period }
        }
        _ => return Err(at.error("needs exactly one of requests, tokens or budget")),
    };
    if raw.burst.is_some() && !matches!(limit, Limit::Requests { .. }) {
        return Err(at.field("burst").error("applies to request limits only"));
    }
    Ok(limit)
}

fn compile_key_part(raw: RawKeyPart, routes: &[String], at: &ConfigPath) -> Result<KeyPart, ConfigError> {
    let part = match raw {
        RawKeyPart::Named(name) => match name.as_str() {
            "consumer" => KeyPart::Consumer,
            "group" => KeyPart::Group,
            "route" if routes.is_empty() => return Err(at.error("keys by route but the rule lists no routes")),
            "route" => KeyPart::Route,
            "model" => KeyPart::Model,
            "client_ip" => KeyPart::ClientIp,
            other => {
                return Err(at.error(format!(
                    "unknown key part {other:?} (consumer, group, route, model, client_ip or {{\"header\": name}})"
                )))
            }
        },
        RawKeyPart::Header(RawHeaderKey { header }) => {
            let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if header.is_empty() || !header.chars().all(is_tchar) {
                return Err(at.field("header").error(format!("{header:?} is not a valid header name")));
            }
            KeyPart::Header(header.to_ascii_lowercase())
        }
    };
    Ok(part)
}

/// Rule names appear in store keys, stat names and header fields, so they are kept to `[A-Za-z0-9_-]`.
fn check_name(name: &str, at: &ConfigPath) -> Result<(), ConfigError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(at.error("must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"));
    }
    Ok(())
}

fn allow_units(period: Period, allowed: &[Period], kind: &str, at: &ConfigPath) -> Result<(), ConfigError> {
    if allowed.contains(&period) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|p| p.name()).collect();
    Err(at.error(format!("{} is not a unit for {kind} limits ({})", period.name(), names.join(", "))))
}

fn positive(n: u64, at: &ConfigPath) -> Result<(), ConfigError> {
    if n == 0 {
        return Err(at.error("must be > 0"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "config/tests.rs"]
mod tests;

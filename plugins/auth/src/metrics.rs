//! Metric names. Envoy exports proxy-wasm metrics as `wasmcustom.<name>` (Prometheus:
//! `envoy_wasmcustom_<name>` with dots turned to underscores). Per-consumer counters embed the consumer
//! name, which is operator-declared and so of bounded cardinality; JWT subjects that are not declared
//! consumers are counted per provider instead. Keys and tokens never appear in a name.

/// Requests admitted with an authenticated consumer.
pub const ALLOWED: &str = "tollgate_auth_allowed_total";
/// Requests on routes that require no authentication.
pub const ANONYMOUS: &str = "tollgate_auth_anonymous_total";
pub const MISSING: &str = "tollgate_auth_missing_total";
pub const INVALID: &str = "tollgate_auth_invalid_total";
pub const EXPIRED: &str = "tollgate_auth_expired_total";
pub const FORBIDDEN: &str = "tollgate_auth_forbidden_total";
/// Requests refused because a JWT could not be judged (signing keys unavailable): a gateway problem.
pub const UNAVAILABLE: &str = "tollgate_auth_unavailable_total";
/// Requests refused by a route's IP rules, including those whose client address was unknown.
pub const IP_DENIED: &str = "tollgate_auth_ip_denied_total";
/// Requests refused because the route limits the consumer to other methods (`consumer_methods`).
pub const METHOD_DENIED: &str = "tollgate_auth_method_denied_total";

/// The counter of a refusal outcome (`AuthError::outcome`).
pub fn outcome(outcome: &str) -> &'static str {
    match outcome {
        "missing" => MISSING,
        "expired" => EXPIRED,
        "forbidden" => FORBIDDEN,
        "unavailable" => UNAVAILABLE,
        "ip_denied" => IP_DENIED,
        "method_denied" => METHOD_DENIED,
        _ => INVALID,
    }
}

/// `tollgate_auth.consumer.<name>.<event>`, e.g. `tollgate_auth.consumer.alice.allowed`.
pub fn consumer_metric(consumer: &str, event: &str) -> String {
    format!("tollgate_auth.consumer.{}.{event}", segment(consumer))
}

/// `tollgate_auth.jwt.<provider>.allowed`: admissions of JWT subjects that are not declared consumers.
pub fn provider_metric(provider: &str) -> String {
    format!("tollgate_auth.jwt.{}.allowed", segment(provider))
}

/// One stat-name segment: anything but `[A-Za-z0-9_-]` becomes `_` so a name cannot add segments.
fn segment(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_add_segments() {
        assert_eq!(consumer_metric("alice", "allowed"), "tollgate_auth.consumer.alice.allowed");
        assert_eq!(consumer_metric("a.b@c d", "forbidden"), "tollgate_auth.consumer.a_b_c_d.forbidden");
        assert_eq!(provider_metric("corp.idp"), "tollgate_auth.jwt.corp_idp.allowed");
        assert_eq!(outcome("expired"), EXPIRED);
        assert_eq!(outcome("invalid"), INVALID);
        assert_eq!(outcome("ip_denied"), IP_DENIED);
        assert_eq!(outcome("method_denied"), METHOD_DENIED);
    }
}

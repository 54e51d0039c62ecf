//! What `check` returns, and the IETF rate-limit header fields it carries.
//!
//! Fields follow draft-ietf-httpapi-ratelimit-headers-10 (Structured Field lists): one item per request
//! rule, named by the rule, `RateLimit-Policy: "per-user";q=100;w=60` and `RateLimit: "per-user";r=42;t=18`
//! (`q` quota, `w` window seconds, `r` remaining, `t` seconds until the quota is whole again). Token and
//! budget rules are not advertised: the draft registers no quota unit for tokens or money.

use tollgate_core::{HeaderEdits, LocalReply};

use crate::error::RateLimitError;
use crate::reservation::Reservation;

/// The outcome for one request.
#[derive(Debug)]
pub enum Decision {
    /// Forward it. Apply `headers` to the response (empty unless `headers` is configured), and settle or
    /// release `reservation` once the usage is known.
    Allow { headers: HeaderEdits, reservation: Reservation },
    /// Answer with `reply` (429, or 403 for an unpriced model). Nothing stays reserved.
    Limit { error: RateLimitError, reply: LocalReply },
}

/// The state of one request rule after this request, for the header fields (the rule's name borrowed from
/// the configuration: most requests are admitted without headers, and the status is then dropped unread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaStatus<'r> {
    pub rule: &'r str,
    pub quota: u64,
    pub window_secs: u64,
    pub remaining: u64,
    pub reset_secs: u64,
}

/// `RateLimit-Policy` and `RateLimit` for the given rules; none when the list is empty.
pub fn header_fields(statuses: &[QuotaStatus<'_>]) -> Vec<(String, String)> {
    if statuses.is_empty() {
        return Vec::new();
    }
    let policy: Vec<String> =
        statuses.iter().map(|s| format!("\"{}\";q={};w={}", s.rule, s.quota, s.window_secs)).collect();
    let current: Vec<String> =
        statuses.iter().map(|s| format!("\"{}\";r={};t={}", s.rule, s.remaining, s.reset_secs)).collect();
    vec![("ratelimit-policy".into(), policy.join(", ")), ("ratelimit".into(), current.join(", "))]
}

/// The header fields as response edits.
pub fn header_edits(statuses: &[QuotaStatus<'_>]) -> HeaderEdits {
    header_fields(statuses).into_iter().fold(HeaderEdits::default(), |edits, (n, v)| edits.set(n, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_structured_lists_one_item_per_rule() {
        let s =
            |rule, remaining| QuotaStatus { rule, quota: 100, window_secs: 60, remaining, reset_secs: 18 };
        let fields = header_fields(&[s("per-user", 42), s("global", 0)]);
        assert_eq!(
            fields,
            vec![
                (
                    "ratelimit-policy".to_string(),
                    "\"per-user\";q=100;w=60, \"global\";q=100;w=60".to_string()
                ),
                ("ratelimit".to_string(), "\"per-user\";r=42;t=18, \"global\";r=0;t=18".to_string()),
            ]
        );
        assert!(header_fields(&[]).is_empty());
        assert!(header_edits(&[]).is_empty());
    }
}

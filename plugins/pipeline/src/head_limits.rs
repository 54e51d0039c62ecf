//! Bounds on the request head Tollgate reads (config section `limits`). Envoy caps heads itself
//! (`max_request_headers_kb`, default 60 KiB; `max_headers_count`, default 100); these defaults sit just
//! above Envoy's, so they only act when an operator raises Envoy's caps, and then they bound what the
//! filter's plugins parse and copy per request. A head beyond them gets 431 before any plugin sees it.

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath, LocalReply, Reason, RequestHead};

/// The section as written in config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeadLimits {
    /// Bytes of every header name and value together, pseudo-headers (`:path`, ...) included.
    #[serde(default = "default_max_bytes")]
    pub max_request_header_bytes: usize,
    /// Header fields, pseudo-headers not counted.
    #[serde(default = "default_max_headers")]
    pub max_request_headers: usize,
}

fn default_max_bytes() -> usize {
    64 * 1024
}

fn default_max_headers() -> usize {
    128
}

impl Default for RawHeadLimits {
    fn default() -> Self {
        RawHeadLimits {
            max_request_header_bytes: default_max_bytes(),
            max_request_headers: default_max_headers(),
        }
    }
}

/// The compiled bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    max_bytes: usize,
    max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        let raw = RawHeadLimits::default();
        HeadLimits { max_bytes: raw.max_request_header_bytes, max_headers: raw.max_request_headers }
    }
}

/// The reason code of a head refused for its size.
pub const HEADERS_TOO_LARGE: &str = "request_headers_too_large";

/// What this module refuses, for the README's troubleshooting table.
pub const REASONS: &[Reason] = &[Reason {
    code: HEADERS_TOO_LARGE,
    status: 431,
    meaning: "the request's headers are larger or more numerous than `limits` allows",
    action: "send fewer or smaller headers (cookies are the usual cause), or raise `limits.max_request_header_bytes` \
             / `limits.max_request_headers`",
}];

impl HeadLimits {
    pub fn compile(raw: RawHeadLimits, path: &ConfigPath) -> Result<Self, ConfigError> {
        for (name, value) in [
            ("max_request_header_bytes", raw.max_request_header_bytes),
            ("max_request_headers", raw.max_request_headers),
        ] {
            if value == 0 {
                return Err(path.field(name).error("must be > 0"));
            }
        }
        Ok(HeadLimits { max_bytes: raw.max_request_header_bytes, max_headers: raw.max_request_headers })
    }

    /// The 431 reply for a head beyond the bounds; `None` when it is within them.
    pub fn check(&self, head: &RequestHead) -> Option<LocalReply> {
        let count = head.headers.len();
        if count > self.max_headers {
            let message = format!(
                "the request has {count} header fields; this gateway accepts at most {}",
                self.max_headers
            );
            return Some(refusal(&message));
        }
        let pseudo = [
            (":method", &head.method),
            (":path", &head.path),
            (":authority", &head.authority),
            (":scheme", &head.scheme),
        ];
        let pseudo = pseudo
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| name.len() + value.len());
        let bytes =
            head.headers.iter().map(|(name, value)| name.len() + value.len()).chain(pseudo).sum::<usize>();
        if bytes > self.max_bytes {
            let message = format!(
                "the request's headers take {bytes} bytes; this gateway accepts at most {}",
                self.max_bytes
            );
            return Some(refusal(&message));
        }
        None
    }
}

fn refusal(message: &str) -> LocalReply {
    LocalReply::error(431, "invalid_request_error", HEADERS_TOO_LARGE, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: usize, headers: usize) -> HeadLimits {
        let raw = RawHeadLimits { max_request_header_bytes: bytes, max_request_headers: headers };
        HeadLimits::compile(raw, &ConfigPath::root().field("limits")).unwrap()
    }

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut pairs =
            vec![(":method", "GET"), (":path", "/v1/models"), (":authority", "gw"), (":scheme", "http")];
        pairs.extend_from_slice(headers);
        RequestHead::from_pairs(pairs)
    }

    fn refused_code(reply: Option<LocalReply>) -> Option<(u16, String)> {
        reply.map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (r.status, body["error"]["code"].as_str().unwrap().to_string())
        })
    }

    #[test]
    fn a_head_within_the_bounds_passes_and_one_byte_over_is_refused() {
        // 7+3 + 5+10 + 10+2 + 7+4 = 48 bytes of pseudo-headers, then "x-a: 12345" is 8 more.
        let request = head(&[("x-a", "12345")]);
        assert_eq!(limits(56, 10).check(&request), None);
        assert_eq!(refused_code(limits(55, 10).check(&request)), Some((431, HEADERS_TOO_LARGE.into())));
    }

    #[test]
    fn too_many_fields_are_refused_whatever_their_size() {
        let request = head(&[("a", ""), ("b", ""), ("c", "")]);
        assert_eq!(limits(1 << 20, 3).check(&request), None);
        let reply = limits(1 << 20, 2).check(&request).unwrap();
        assert_eq!(reply.reason(), Some(HEADERS_TOO_LARGE));
        assert!(String::from_utf8_lossy(&reply.body).contains("3 header fields"), "{reply:?}");
    }

    #[test]
    fn defaults_sit_above_envoys_own_caps() {
        let defaults = HeadLimits::default();
        assert!(defaults.max_bytes > 60 * 1024 && defaults.max_headers > 100, "{defaults:?}");
        let big = "x".repeat(60 * 1024 - 100);
        assert_eq!(defaults.check(&head(&[("cookie", &big)])), None);
    }

    #[test]
    fn zero_bounds_are_config_errors_naming_the_field() {
        let raw = RawHeadLimits { max_request_header_bytes: 0, ..RawHeadLimits::default() };
        let err = HeadLimits::compile(raw, &ConfigPath::root().field("limits")).unwrap_err();
        assert!(err.to_string().contains("limits.max_request_header_bytes"), "{err}");
    }
}

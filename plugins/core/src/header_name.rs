use crate::{ConfigError, ConfigPath};

/// Fields that carry routing or message framing. Envoy owns them, so no setting may make the filter set
/// or remove them.
const ENVOY_OWNED: [&str; 8] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "content-length",
];

/// Checks a header name that configuration tells the filter to write (set, remove, or fill from a
/// credential): an RFC 9110 token, not a pseudo-header, not a field Envoy owns. Returns it lower-cased,
/// the form HTTP/2 and Envoy use.
pub fn header_name(name: &str, path: &ConfigPath) -> Result<String, ConfigError> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err(path.error(format!("{name:?} is not a valid header name")));
    }
    let lower = name.to_ascii_lowercase();
    if ENVOY_OWNED.contains(&lower.as_str()) {
        return Err(
            path.error(format!("header {lower:?} is managed by Envoy and cannot be written by the filter"))
        );
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str) -> Result<String, String> {
        header_name(name, &ConfigPath::root().field("h")).map_err(|e| e.to_string())
    }

    #[test]
    fn tokens_are_lowercased() {
        assert_eq!(check("X-Tollgate-Consumer"), Ok("x-tollgate-consumer".to_string()));
    }

    #[test]
    fn non_tokens_pseudo_headers_and_envoy_owned_fields_are_refused() {
        assert_eq!(check("bad name"), Err(r#"h: "bad name" is not a valid header name"#.to_string()));
        assert!(check(":path").is_err());
        assert!(check("").is_err());
        assert!(check("x-a\r\nx-b").is_err());
        for owned in ["Host", "content-length", "Transfer-Encoding", "connection", "te"] {
            assert!(check(owned).unwrap_err().contains("managed by Envoy"), "{owned}");
        }
    }
}

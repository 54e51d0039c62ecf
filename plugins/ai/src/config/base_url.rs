//! `ai.providers[].base_url`: where a provider lives, split into the `:authority` the filter sends and the
//! path prefix every adapter puts before its own paths.

use tollgate_core::{ConfigError, ConfigPath};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `host[:port]`.
    pub authority: String,
    /// The path without a trailing slash (`""` for none).
    pub path: String,
}

impl BaseUrl {
    /// Reads `http(s)://host[:port][/path]`. Queries, fragments and credentials in the URL are refused:
    /// adapters append their own paths and queries, and provider keys belong in `api_key`.
    pub fn parse(url: &str, at: &ConfigPath) -> Result<BaseUrl, ConfigError> {
        let invalid = |why: &str| at.error(format!("{url:?} is not a usable base URL: {why}"));
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| invalid("it must start with http:// or https://"))?;
        if rest.contains(['?', '#']) {
            return Err(invalid("it must not have a query or fragment"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(invalid("credentials go in api_key, not in the URL"));
        }
        check_authority(authority).map_err(invalid)?;
        if !path.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
            return Err(invalid("the path must be visible ASCII without spaces"));
        }
        Ok(BaseUrl {
            authority: authority.to_ascii_lowercase(),
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

fn check_authority(authority: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, after) = v6.split_once(']').ok_or("an IPv6 host needs its closing ']'")?;
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err("the IPv6 host is malformed");
        }
        match after {
            "" => (inner, None),
            _ => (inner, Some(after.strip_prefix(':').ok_or("unexpected text after the IPv6 host")?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' || c == ':';
    if host.is_empty() || !host.chars().all(host_char) {
        return Err("the host is missing or has characters a host cannot have");
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Err("the port must be a number up to 65535");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(String, String), String> {
        BaseUrl::parse(url, &ConfigPath::root().field("base_url"))
            .map(|u| (u.authority, u.path))
            .map_err(|e| e.to_string())
    }

    fn ok(authority: &str, path: &str) -> Result<(String, String), String> {
        Ok((authority.to_string(), path.to_string()))
    }

    #[test]
    fn authority_and_path_are_split() {
        assert_eq!(parse("https://api.anthropic.com"), ok("api.anthropic.com", ""));
        assert_eq!(parse("https://api.openai.com/v1/"), ok("api.openai.com", "/v1"));
        assert_eq!(parse("http://localhost:11434/v1"), ok("localhost:11434", "/v1"));
        assert_eq!(parse("http://[::1]:8000"), ok("[::1]:8000", ""));
        assert_eq!(parse("https://Example.COM/openai"), ok("example.com", "/openai"));
        assert_eq!(parse("https://x.example/"), ok("x.example", ""));
    }

    #[test]
    fn unusable_urls_are_refused_with_the_path() {
        for bad in [
            "ftp://x",
            "api.openai.com",
            "https://",
            "https://:80",
            "https://x:99999",
            "https://x:abc",
            "https://user:pw@x",
            "https://x/v1?key=1",
            "https://x/a b",
            "https://[::1",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("base_url: "), "{bad}: {err}");
        }
    }
}

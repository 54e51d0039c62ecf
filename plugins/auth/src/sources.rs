use std::borrow::Cow;

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath, HeaderEdits, RequestHead};

/// Where a credential may be presented, as written in config: exactly one of `header` (optionally with a
/// `scheme` such as `Bearer`), `query` or `cookie`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentialSource {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
}

/// A compiled credential source. Header and cookie names are compared case-insensitively and
/// case-sensitively respectively, as HTTP defines them; query parameter names are compared as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Header { name: String, scheme: Option<String> },
    Query(String),
    Cookie(String),
}

impl Source {
    pub fn bearer() -> Self {
        Source::Header { name: "authorization".into(), scheme: Some("Bearer".into()) }
    }

    pub fn header(name: &str) -> Self {
        Source::Header { name: name.into(), scheme: None }
    }

    fn compile(raw: RawCredentialSource, path: &ConfigPath) -> Result<Self, ConfigError> {
        let scheme = match raw.scheme {
            Some(s) if raw.header.is_none() => {
                return Err(path.field("scheme").error(format!("{s:?} only applies to a header")))
            }
            Some(s) if !is_token(&s) => {
                return Err(path.field("scheme").error(format!("{s:?} is not a valid scheme")))
            }
            other => other,
        };
        match (raw.header, raw.query, raw.cookie) {
            (Some(name), None, None) if is_token(&name) => {
                Ok(Source::Header { name: name.to_ascii_lowercase(), scheme })
            }
            (Some(name), None, None) => {
                Err(path.field("header").error(format!("{name:?} is not a valid header name")))
            }
            (None, Some(name), None) if !name.is_empty() && !name.contains(['&', '=', '#', '?']) => {
                Ok(Source::Query(name))
            }
            (None, Some(name), None) => {
                Err(path.field("query").error(format!("{name:?} is not a valid query parameter")))
            }
            (None, None, Some(name)) if is_token(&name) => Ok(Source::Cookie(name)),
            (None, None, Some(name)) => {
                Err(path.field("cookie").error(format!("{name:?} is not a valid cookie name")))
            }
            _ => Err(path.error("must have exactly one of `header`, `query` or `cookie`")),
        }
    }

    /// The credential this source carries in `head`: the first non-empty value.
    pub fn extract<'h>(&self, head: &'h RequestHead) -> Option<Cow<'h, str>> {
        match self {
            Source::Header { name, scheme: None } => {
                header_values(head, name).map(str::trim).find(|v| !v.is_empty()).map(Cow::Borrowed)
            }
            Source::Header { name, scheme: Some(scheme) } => header_values(head, name)
                .filter_map(|v| v.trim().split_once(' '))
                .find(|(s, rest)| s.eq_ignore_ascii_case(scheme) && !rest.trim().is_empty())
                .map(|(_, rest)| Cow::Borrowed(rest.trim())),
            Source::Query(param) => query_pairs(&head.path)
                .find(|(n, v)| n == param && !v.is_empty())
                .map(|(_, v)| percent_decode(v)),
            Source::Cookie(cookie) => cookie_pairs(head)
                .find(|(n, v)| n == cookie && !v.is_empty())
                .map(|(_, v)| Cow::Borrowed(v.trim_matches('"'))),
        }
    }
}

/// An ordered list of sources; the first that carries a credential wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources(Vec<Source>);

impl Sources {
    /// `None` means the defaults; an explicit empty list is refused since it would make credentials unusable.
    pub fn compile(
        raw: Option<Vec<RawCredentialSource>>,
        defaults: Vec<Source>,
        path: &ConfigPath,
    ) -> Result<Self, ConfigError> {
        let Some(raw) = raw else { return Ok(Sources(defaults)) };
        if raw.is_empty() {
            return Err(path.error("must list at least one source (omit it for the defaults)"));
        }
        raw.into_iter()
            .enumerate()
            .map(|(i, r)| Source::compile(r, &path.index(i)))
            .collect::<Result<_, _>>()
            .map(Sources)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Source> {
        self.0.iter()
    }

    pub fn contains(&self, source: &Source) -> bool {
        self.0.contains(source)
    }
}

/// Whether a credential has the shape of a JWS compact serialisation: three non-empty base64url segments.
pub fn looks_like_jwt(value: &str) -> bool {
    let is_b64url =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut segments = value.split('.');
    segments.by_ref().take(3).filter(|s| is_b64url(s)).count() == 3 && segments.next().is_none()
}

/// Every place a credential can travel in, removed before the request goes upstream.
#[derive(Clone, Debug, Default)]
pub struct CredentialStrip {
    headers: Vec<String>,
    query: Vec<String>,
    cookies: Vec<String>,
}

impl CredentialStrip {
    /// The usual credential headers plus every configured source.
    pub fn new<'a>(sources: impl IntoIterator<Item = &'a Source>) -> Self {
        let mut strip = CredentialStrip {
            headers: vec!["authorization".into(), "x-api-key".into(), "api-key".into()],
            ..Default::default()
        };
        for source in sources {
            let (list, name) = match source {
                Source::Header { name, .. } => (&mut strip.headers, name),
                Source::Query(name) => (&mut strip.query, name),
                Source::Cookie(name) => (&mut strip.cookies, name),
            };
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        strip
    }

    /// Edits removing credentials from `head`: headers, and a rewritten `:path` / `cookie` when a credential
    /// query parameter or cookie is present.
    pub fn edits(&self, head: &RequestHead, edits: &mut HeaderEdits) {
        // Only the ones the request carries: each removal is a host call.
        edits.remove.extend(self.headers.iter().filter(|name| head.headers.get(name).is_some()).cloned());
        if !self.query.is_empty() {
            if let Some((base, query)) = head.path.split_once('?') {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| !self.query.iter().any(|q| pair_name(pair) == q))
                    .collect();
                if kept.len() != query.split('&').count() {
                    let path =
                        if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
                    edits.set.push((":path".into(), path));
                }
            }
        }
        if !self.cookies.is_empty() {
            let all: Vec<&str> =
                head.headers.get_all("cookie").flat_map(|v| v.split(';')).map(str::trim).collect();
            let kept: Vec<&str> =
                all.iter().copied().filter(|c| !self.cookies.iter().any(|n| pair_name(c) == n)).collect();
            if kept.len() != all.len() {
                if kept.iter().all(|c| c.is_empty()) {
                    edits.remove.push("cookie".into());
                } else {
                    edits.set.push(("cookie".into(), kept.join("; ")));
                }
            }
        }
    }
}

/// Like `Headers::get_all`, but the values borrow from the head only, not from `name`.
fn header_values<'h, 'n>(
    head: &'h RequestHead,
    name: &'n str,
) -> impl Iterator<Item = &'h str> + use<'h, 'n> {
    head.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn pair_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(n, _)| n).trim()
}

fn query_pairs(path: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    query.split('&').map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

fn cookie_pairs(head: &RequestHead) -> impl Iterator<Item = (&str, &str)> {
    head.headers
        .get_all("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.split_once('='))
        .map(|(n, v)| (n.trim(), v.trim()))
}

/// `%XX` decoding for query values; a malformed escape is kept literally (such a key will simply not match).
fn percent_decode(value: &str) -> Cow<'_, str> {
    if !value.contains('%') {
        return Cow::Borrowed(value);
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, escaped) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// An RFC 9110 token (header names, auth schemes, cookie names).
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[cfg(test)]
mod tests;

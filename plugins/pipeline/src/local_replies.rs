use std::collections::BTreeMap;

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath, LocalReply, RequestHead};

use crate::header_rules::{checked_name, checked_value};

/// One locally answered route as written in config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalReply {
    /// Matches paths equal to this or below it (`/a` matches `/a`, `/a/b`, `/a?x`, not `/ab`).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Matches only this method; any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A string is sent as `text/plain`; any other JSON value is sent as `application/json`.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

#[derive(Debug)]
struct Route {
    path_prefix: Option<String>,
    method: Option<String>,
    reply: LocalReply,
}

impl Route {
    fn matches(&self, head: &RequestHead) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| m == head.method);
        let path_ok = self.path_prefix.as_deref().is_none_or(|prefix| {
            let path = head.path_only();
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'))
        });
        method_ok && path_ok
    }
}

/// Routes the filter answers itself, in config order.
#[derive(Debug, Default)]
pub struct LocalReplies {
    routes: Vec<Route>,
}

impl LocalReplies {
    pub fn compile(raw: Vec<RawLocalReply>, path: &ConfigPath) -> Result<Self, ConfigError> {
        let routes = raw
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_route(r, &path.index(i)))
            .collect::<Result<_, _>>()?;
        Ok(LocalReplies { routes })
    }

    /// The reply for the first route that matches, if any.
    pub fn find(&self, head: &RequestHead) -> Option<&LocalReply> {
        self.routes.iter().find(|r| r.matches(head)).map(|r| &r.reply)
    }
}

fn compile_route(raw: RawLocalReply, path: &ConfigPath) -> Result<Route, ConfigError> {
    if !(200..=599).contains(&raw.status) {
        return Err(path
            .field("status")
            .error(format!("{} is not a final HTTP status (200-599)", raw.status)));
    }
    if let Some(prefix) = &raw.path_prefix {
        if !prefix.starts_with('/') {
            return Err(path.field("path_prefix").error("must start with '/'"));
        }
    }
    if let Some(method) = &raw.method {
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(path.field("method").error(format!("{method:?} is not an upper-case HTTP method")));
        }
    }
    let (content_type, body) = match raw.body {
        None => (None, Vec::new()),
        Some(serde_json::Value::String(text)) => (Some("text/plain; charset=utf-8"), text.into_bytes()),
        Some(json) => (Some("application/json"), json.to_string().into_bytes()),
    };
    let mut headers = Vec::new();
    if let Some(ct) = content_type {
        headers.push(("content-type".to_string(), ct.to_string()));
    }
    for (name, value) in raw.headers {
        let at = path.field("headers").field(&name);
        let name = checked_name(&name, &at)?;
        headers.retain(|(n, _)| *n != name);
        headers.push((name, checked_value(value, &at)?));
    }
    Ok(Route {
        path_prefix: raw.path_prefix,
        method: raw.method,
        reply: LocalReply { status: raw.status, headers, body, details: "tollgate_local_reply".into() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<LocalReplies, ConfigError> {
        LocalReplies::compile(serde_json::from_str(json).unwrap(), &ConfigPath::root().field("local_replies"))
    }

    fn head(method: &str, path: &str) -> RequestHead {
        RequestHead::from_pairs([(":method", method), (":path", path)])
    }

    #[test]
    fn prefix_matches_whole_segments_and_ignores_query() {
        let replies = compile(r#"[{"path_prefix":"/ping","status":204}]"#).unwrap();
        assert!(replies.find(&head("GET", "/ping")).is_some());
        assert!(replies.find(&head("GET", "/ping/deep")).is_some());
        assert!(replies.find(&head("GET", "/ping?x=1")).is_some());
        assert!(replies.find(&head("GET", "/pingpong")).is_none());
        assert!(replies.find(&head("GET", "/")).is_none());
    }

    #[test]
    fn method_and_first_match_win() {
        let replies = compile(
            r#"[{"path_prefix":"/a","method":"POST","status":201},{"path_prefix":"/","status":503}]"#,
        )
        .unwrap();
        assert_eq!(replies.find(&head("POST", "/a")).unwrap().status, 201);
        assert_eq!(replies.find(&head("GET", "/a")).unwrap().status, 503);
    }

    #[test]
    fn bodies_get_a_content_type_that_headers_may_override() {
        let replies = compile(
            r#"[{"path_prefix":"/j","status":200,"body":{"ok":true}},
                {"path_prefix":"/t","status":200,"body":"hi","headers":{"Content-Type":"text/html"}}]"#,
        )
        .unwrap();
        let json = replies.find(&head("GET", "/j")).unwrap();
        assert_eq!(json.body, br#"{"ok":true}"#);
        assert_eq!(json.headers, [("content-type".to_string(), "application/json".to_string())]);
        let text = replies.find(&head("GET", "/t")).unwrap();
        assert_eq!(text.body, b"hi");
        assert_eq!(text.headers, [("content-type".to_string(), "text/html".to_string())]);
    }

    #[test]
    fn bad_routes_name_their_path() {
        let e = compile(r#"[{"status":200},{"status":99}]"#).unwrap_err();
        assert_eq!(e.path.to_string(), "local_replies[1].status");
        let e = compile(r#"[{"path_prefix":"ping","status":200}]"#).unwrap_err();
        assert_eq!(e.path.to_string(), "local_replies[0].path_prefix");
        let e = compile(r#"[{"method":"get","status":200}]"#).unwrap_err();
        assert_eq!(e.path.to_string(), "local_replies[0].method");
    }
}

use std::borrow::Cow;

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath};

use crate::client_ip::{IpRules, RawIpRules};
use crate::consumer_methods::{ConsumerMethods, RawConsumerMethods};

/// Which credentials a route accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Require {
    ApiKey,
    Jwt,
    /// An API key or a JWT.
    Any,
    /// No authentication: credentials are left alone, only spoofed identity headers are removed.
    None,
}

impl Require {
    pub fn accepts_api_keys(self) -> bool {
        matches!(self, Require::ApiKey | Require::Any)
    }

    pub fn accepts_jwt(self) -> bool {
        matches!(self, Require::Jwt | Require::Any)
    }
}

/// One entry of `auth.routes`, as written in config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path_prefix: String,
    /// Empty: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Absent: the section's `default`.
    #[serde(default)]
    pub require: Option<Require>,
    /// Empty: every configured provider.
    #[serde(default)]
    pub jwt_providers: Vec<String>,
    /// With `groups`, who may use the route once authenticated; both empty: every consumer.
    #[serde(default)]
    pub consumers: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Which client addresses may use the route, checked before credentials.
    #[serde(default)]
    pub ip: Option<RawIpRules>,
    /// Methods some consumers are limited to on this route.
    #[serde(default)]
    pub consumer_methods: Vec<RawConsumerMethods>,
}

/// What the rest of the `auth` section declares, which route rules may refer to.
pub struct Declared<'a> {
    pub consumers: &'a [&'a str],
    pub groups: &'a [&'a str],
    pub jwt_providers: &'a [&'a str],
    pub has_api_keys: bool,
}

/// A compiled route rule.
#[derive(Debug, Clone)]
pub struct Route {
    prefix: String,
    methods: Vec<String>,
    pub require: Require,
    /// Empty: every provider.
    pub jwt_providers: Vec<String>,
    consumers: Vec<String>,
    groups: Vec<String>,
    pub ip: Option<IpRules>,
    pub consumer_methods: ConsumerMethods,
}

impl Route {
    /// The rule for requests no configured route matches.
    pub fn fallback(require: Require) -> Self {
        Route {
            prefix: "/".into(),
            methods: Vec::new(),
            require,
            jwt_providers: Vec::new(),
            consumers: Vec::new(),
            groups: Vec::new(),
            ip: None,
            consumer_methods: ConsumerMethods::default(),
        }
    }

    pub fn compile(
        raw: RawRoute,
        default: Require,
        declared: &Declared<'_>,
        path: &ConfigPath,
    ) -> Result<Self, ConfigError> {
        if !raw.path_prefix.starts_with('/') {
            return Err(path.field("path_prefix").error("must start with '/'"));
        }
        let mut methods = Vec::with_capacity(raw.methods.len());
        for (i, method) in raw.methods.into_iter().enumerate() {
            if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(path
                    .field("methods")
                    .index(i)
                    .error(format!("{method:?} is not an HTTP method")));
            }
            methods.push(method.to_ascii_uppercase());
        }
        let require = raw.require.unwrap_or(default);
        check_require(require, declared, &path.field("require"))?;
        if !raw.jwt_providers.is_empty() && !require.accepts_jwt() {
            return Err(path.field("jwt_providers").error("only applies when require is \"jwt\" or \"any\""));
        }
        check_known(
            &raw.jwt_providers,
            declared.jwt_providers,
            "JWT provider",
            &path.field("jwt_providers"),
        )?;
        check_known(&raw.consumers, declared.consumers, "consumer", &path.field("consumers"))?;
        check_known(&raw.groups, declared.groups, "group", &path.field("groups"))?;
        if require == Require::None && !(raw.consumers.is_empty() && raw.groups.is_empty()) {
            return Err(path
                .field("require")
                .error("a route that requires \"none\" cannot restrict consumers or groups"));
        }
        let consumer_methods =
            ConsumerMethods::compile(raw.consumer_methods, declared, &path.field("consumer_methods"))?;
        if require == Require::None && !consumer_methods.is_empty() {
            return Err(path
                .field("consumer_methods")
                .error("a route that requires \"none\" has no consumer to limit"));
        }
        let ip = raw.ip.map(|ip| IpRules::compile(ip, &path.field("ip"))).transpose()?;
        Ok(Route {
            prefix: raw.path_prefix,
            methods,
            require,
            jwt_providers: raw.jwt_providers,
            consumers: raw.consumers,
            groups: raw.groups,
            ip,
            consumer_methods,
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.prefix)
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }

    /// Whether an authenticated consumer may use the route.
    pub fn permits(&self, consumer: &str, group: Option<&str>) -> bool {
        if self.consumers.is_empty() && self.groups.is_empty() {
            return true;
        }
        self.consumers.iter().any(|c| c == consumer)
            || group.is_some_and(|g| self.groups.iter().any(|x| x == g))
    }
}

/// A route requirement that cannot be met by the rest of the configuration is a mistake, not a lockout.
pub fn check_require(
    require: Require,
    declared: &Declared<'_>,
    path: &ConfigPath,
) -> Result<(), ConfigError> {
    let no_jwt = declared.jwt_providers.is_empty();
    match require {
        Require::ApiKey if !declared.has_api_keys => {
            Err(path.error("requires API keys, but no consumer has one"))
        }
        Require::Jwt if no_jwt => Err(path.error("requires a JWT, but no jwt_providers are configured")),
        Require::Any if no_jwt && !declared.has_api_keys => {
            Err(path.error("requires credentials, but no API keys or jwt_providers are configured"))
        }
        _ => Ok(()),
    }
}

pub fn check_known(
    names: &[String],
    known: &[&str],
    what: &str,
    path: &ConfigPath,
) -> Result<(), ConfigError> {
    match names.iter().position(|n| !known.contains(&n.as_str())) {
        Some(i) => {
            Err(path.index(i).error(format!("unknown {what} {:?}", names.get(i).map_or("", |n| n.as_str()))))
        }
        None => Ok(()),
    }
}

/// One of the route rules (or the fallback) by its place in the configuration: what a stream keeps to name
/// its route in metrics without copying the prefix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteId(Option<usize>);

/// The route rules in order, first match wins, and the rule for everything else.
#[derive(Debug, Clone)]
pub struct Routes {
    rules: Vec<Route>,
    fallback: Route,
}

impl Routes {
    pub fn new(rules: Vec<Route>, fallback: Route) -> Self {
        Routes { rules, fallback }
    }

    /// The rule for a request; `path` must already be canonical (see `canonical_path`).
    pub fn find(&self, method: &str, path: &str) -> &Route {
        self.rules.iter().find(|r| r.matches(method, path)).unwrap_or(&self.fallback)
    }

    /// Which rule a request meets, as a small handle for [`Routes::prefix_of`].
    pub fn id_for(&self, method: &str, path: &str) -> RouteId {
        RouteId(self.rules.iter().position(|r| r.matches(method, path)))
    }

    /// The path prefix of a rule (`/` for the fallback): a bounded label for metrics.
    pub fn prefix_of(&self, id: RouteId) -> &str {
        let route = id.0.and_then(|i| self.rules.get(i)).unwrap_or(&self.fallback);
        &route.prefix
    }

    pub fn have_ip_rules(&self) -> bool {
        self.rules.iter().any(|r| r.ip.is_some())
    }
}

/// The path (query already removed) with `%2e` decoded and `.`/`..` segments resolved (RFC 3986 §5.2.4), so
/// that `/public/../v1/chat` cannot slip past a rule or key scope for `/v1/`. Envoy should still be run with
/// `normalize_path` and `merge_slashes`; this keeps auth safe when it is not.
pub fn canonical_path(path: &str) -> Cow<'_, str> {
    // Most paths hold neither a dot nor a percent sign: one pass over the bytes says so.
    if !path.bytes().any(|b| b == b'.' || b == b'%') {
        return Cow::Borrowed(path);
    }
    let has_dot_segment = path.split('/').any(|s| s == "." || s == "..");
    if !path.starts_with('/') || !(has_dot_segment || path.contains("%2e") || path.contains("%2E")) {
        return Cow::Borrowed(path);
    }
    let decoded = path.replace("%2e", ".").replace("%2E", ".");
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split('/').skip(1) {
        trailing_slash = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: Declared<'static> = Declared {
        consumers: &["alice", "bob"],
        groups: &["gold"],
        jwt_providers: &["corp"],
        has_api_keys: true,
    };

    fn route(json: &str) -> Result<Route, ConfigError> {
        Route::compile(
            serde_json::from_str(json).unwrap(),
            Require::Any,
            &DECLARED,
            &ConfigPath::root().field("r"),
        )
    }

    #[test]
    fn dot_segments_are_resolved() {
        assert_eq!(canonical_path("/v1/chat"), "/v1/chat");
        assert!(matches!(canonical_path("/v1/chat"), Cow::Borrowed(_)));
        assert_eq!(canonical_path("/public/../v1/chat"), "/v1/chat");
        assert_eq!(canonical_path("/public/%2e%2E/v1/chat"), "/v1/chat");
        assert_eq!(canonical_path("/a/./b/"), "/a/b/");
        assert_eq!(canonical_path("/a/b/.."), "/a/");
        assert_eq!(canonical_path("/../../.."), "/");
        assert_eq!(canonical_path("/a/..b/c"), "/a/..b/c");
    }

    #[test]
    fn first_matching_rule_wins_and_methods_filter() {
        let routes = Routes::new(
            vec![
                route(r#"{"path_prefix":"/v1/models","methods":["get"],"require":"none"}"#).unwrap(),
                route(r#"{"path_prefix":"/v1/","require":"api_key"}"#).unwrap(),
            ],
            Route::fallback(Require::Jwt),
        );
        assert_eq!(routes.find("GET", "/v1/models").require, Require::None);
        assert_eq!(routes.find("POST", "/v1/models").require, Require::ApiKey);
        assert_eq!(routes.find("GET", "/health").require, Require::Jwt);
    }

    #[test]
    fn consumers_and_groups_are_alternatives() {
        let r = route(r#"{"path_prefix":"/","consumers":["bob"],"groups":["gold"]}"#).unwrap();
        assert!(r.permits("bob", None));
        assert!(r.permits("alice", Some("gold")));
        assert!(!r.permits("alice", Some("silver")));
        assert!(!r.permits("alice", None));
        assert!(route(r#"{"path_prefix":"/"}"#).unwrap().permits("anyone", None));
    }

    #[test]
    fn bad_rules_name_their_path() {
        let err = |json| route(json).unwrap_err().to_string();
        assert_eq!(err(r#"{"path_prefix":"v1"}"#), "r.path_prefix: must start with '/'");
        assert_eq!(
            err(r#"{"path_prefix":"/","methods":["GET","P OST"]}"#),
            r#"r.methods[1]: "P OST" is not an HTTP method"#
        );
        assert_eq!(
            err(r#"{"path_prefix":"/","consumers":["alice","carol"]}"#),
            r#"r.consumers[1]: unknown consumer "carol""#
        );
        assert_eq!(
            err(r#"{"path_prefix":"/","groups":["silver"]}"#),
            r#"r.groups[0]: unknown group "silver""#
        );
        assert_eq!(
            err(r#"{"path_prefix":"/","jwt_providers":["x"]}"#),
            r#"r.jwt_providers[0]: unknown JWT provider "x""#
        );
        assert!(err(r#"{"path_prefix":"/","require":"api_key","jwt_providers":["corp"]}"#)
            .starts_with("r.jwt_providers: only applies"));
        assert!(err(r#"{"path_prefix":"/","require":"none","groups":["gold"]}"#)
            .starts_with("r.require: a route"));
        assert!(serde_json::from_str::<RawRoute>(r#"{"path_prefix":"/","require":"sometimes"}"#).is_err());
    }

    #[test]
    fn unmeetable_requirements_are_config_errors() {
        let nothing = Declared { consumers: &[], groups: &[], jwt_providers: &[], has_api_keys: false };
        let at = ConfigPath::root().field("default");
        assert!(check_require(Require::None, &nothing, &at).is_ok());
        for require in [Require::ApiKey, Require::Jwt, Require::Any] {
            assert!(check_require(require, &nothing, &at)
                .unwrap_err()
                .to_string()
                .starts_with("default: requires"));
        }
    }
}

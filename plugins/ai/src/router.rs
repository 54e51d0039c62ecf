//! Model name → provider and upstream model. An exact name wins over every wildcard; wildcards are tried in
//! config order. A wildcard has one `*` anywhere in it, and the upstream model may reuse what it matched.

use std::collections::HashMap;

use tollgate_core::{ConfigError, ConfigPath};

/// One `ai.models[]` entry, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The name as configured (`gpt-4o`, `claude-*`, `*`).
    pub name: String,
    /// For a wildcard, the text before and after its `*`.
    wildcard: Option<(String, String)>,
    /// The upstream model; a `*` in it is replaced by what the name's `*` matched. `None`: the client's name.
    upstream: Option<String>,
    /// Index into the configured providers.
    pub provider: usize,
    /// Providers (and their upstream models, as `upstream`) to use in this order while the ones before
    /// cool down.
    fallbacks: Vec<(usize, Option<String>)>,
}

/// Where one request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch<'r> {
    pub route: &'r Route,
    pub upstream_model: String,
    /// The fallbacks' providers and upstream models, in order (empty for a route without any).
    pub fallbacks: Vec<(usize, String)>,
}

impl Route {
    pub fn compile(
        name: &str,
        upstream: Option<&str>,
        provider: usize,
        at: &ConfigPath,
    ) -> Result<Route, ConfigError> {
        if name.is_empty() {
            return Err(at.field("name").error("must not be empty"));
        }
        let stars = name.matches('*').count();
        if stars > 1 {
            return Err(at.field("name").error(format!("{name:?} has more than one '*'")));
        }
        let wildcard = name.split_once('*').map(|(pre, post)| (pre.to_string(), post.to_string()));
        check_upstream(upstream, wildcard.is_some(), at)?;
        let upstream = upstream.map(str::to_string);
        Ok(Route { name: name.to_string(), wildcard, upstream, provider, fallbacks: Vec::new() })
    }

    /// Adds a fallback provider; `upstream` follows the rules of the route's own.
    pub fn add_fallback(
        &mut self,
        provider: usize,
        upstream: Option<&str>,
        at: &ConfigPath,
    ) -> Result<(), ConfigError> {
        check_upstream(upstream, self.is_wildcard(), at)?;
        if provider == self.provider || self.fallbacks.iter().any(|(p, _)| *p == provider) {
            return Err(at.field("provider").error("is already a provider of this model"));
        }
        self.fallbacks.push((provider, upstream.map(str::to_string)));
        Ok(())
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard.is_some()
    }

    /// What the `*` matched, or `None` when this route does not serve `model`.
    fn matches<'m>(&self, model: &'m str) -> Option<&'m str> {
        let (prefix, suffix) = self.wildcard.as_ref()?;
        let rest = model.strip_prefix(prefix.as_str())?;
        rest.strip_suffix(suffix.as_str())
    }

    fn upstream_model(&self, model: &str, matched: &str) -> String {
        rename(self.upstream.as_deref(), model, matched)
    }

    fn found(&self, model: &str, matched: &str) -> RouteMatch<'_> {
        RouteMatch {
            route: self,
            upstream_model: self.upstream_model(model, matched),
            fallbacks: self
                .fallbacks
                .iter()
                .map(|(p, up)| (*p, rename(up.as_deref(), model, matched)))
                .collect(),
        }
    }
}

/// The upstream model for a client's `model`: as is, or as configured with the `*` filled in.
fn rename(upstream: Option<&str>, model: &str, matched: &str) -> String {
    match upstream {
        None => model.to_string(),
        Some(upstream) => upstream.replacen('*', matched, 1),
    }
}

fn check_upstream(upstream: Option<&str>, wildcard: bool, at: &ConfigPath) -> Result<(), ConfigError> {
    let Some(upstream) = upstream else { return Ok(()) };
    if upstream.is_empty() {
        return Err(at.field("model").error("must not be empty"));
    }
    let stars = upstream.matches('*').count();
    if stars > 1 || (stars == 1 && !wildcard) {
        return Err(at
            .field("model")
            .error(format!("{upstream:?} may use one '*', and only when the name has one")));
    }
    Ok(())
}

/// Every route, indexed for lookup.
#[derive(Clone, Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    exact: HashMap<String, usize>,
}

impl Router {
    /// Indexes the routes; an exact name declared twice is a config error (the second could never match).
    pub fn new(routes: Vec<Route>, at: &ConfigPath) -> Result<Router, ConfigError> {
        let mut exact = HashMap::new();
        for (i, route) in routes.iter().enumerate() {
            if exact.contains_key(&route.name)
                || (route.is_wildcard() && routes.iter().take(i).any(|r| r.name == route.name))
            {
                return Err(at.index(i).field("name").error(format!("{:?} is declared twice", route.name)));
            }
            if !route.is_wildcard() {
                exact.insert(route.name.clone(), i);
            }
        }
        Ok(Router { routes, exact })
    }

    /// The route serving `model`, if any.
    pub fn route(&self, model: &str) -> Option<RouteMatch<'_>> {
        if let Some(route) = self.exact.get(model).and_then(|i| self.routes.get(*i)) {
            return Some(route.found(model, ""));
        }
        self.routes.iter().find_map(|route| Some(route.found(model, route.matches(model)?)))
    }

    /// Every route in config order (`/v1/models` lists the exact ones).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(entries: &[(&str, Option<&str>, usize)]) -> Router {
        let at = ConfigPath::root().field("models");
        let routes = entries
            .iter()
            .enumerate()
            .map(|(i, (name, up, p))| Route::compile(name, *up, *p, &at.index(i)).unwrap())
            .collect();
        Router::new(routes, &at).unwrap()
    }

    fn find(router: &Router, model: &str) -> Option<(usize, String)> {
        router.route(model).map(|m| (m.route.provider, m.upstream_model))
    }

    #[test]
    fn exact_names_win_over_earlier_wildcards() {
        let r =
            router(&[("claude-*", None, 0), ("claude-fast", Some("claude-haiku-4-5"), 1), ("*", None, 2)]);
        assert_eq!(find(&r, "claude-fast"), Some((1, "claude-haiku-4-5".into())));
        assert_eq!(find(&r, "claude-sonnet-4-5"), Some((0, "claude-sonnet-4-5".into())));
        assert_eq!(find(&r, "gpt-4o"), Some((2, "gpt-4o".into())));
    }

    #[test]
    fn wildcards_apply_in_config_order_and_insert_what_they_matched() {
        let r = router(&[
            ("azure/*", Some("*"), 0),
            ("*-latest", Some("*-2025"), 1),
            ("llama*b", Some("meta/llama-*b-instruct"), 2),
        ]);
        assert_eq!(find(&r, "azure/gpt-4o"), Some((0, "gpt-4o".into())));
        assert_eq!(find(&r, "azure/x-latest"), Some((0, "x-latest".into())));
        assert_eq!(find(&r, "mistral-latest"), Some((1, "mistral-2025".into())));
        assert_eq!(find(&r, "llama3-70b"), Some((2, "meta/llama-3-70b-instruct".into())));
        assert_eq!(find(&r, "gpt-4o"), None);
        assert_eq!(find(&r, "llamab"), Some((2, "meta/llama-b-instruct".into())), "a star may match nothing");
    }

    #[test]
    fn no_route_no_match() {
        let r = router(&[("gpt-4o", None, 0)]);
        assert_eq!(find(&r, "gpt-4o"), Some((0, "gpt-4o".into())));
        assert_eq!(find(&r, "gpt-4o-mini"), None);
        assert_eq!(find(&r, ""), None);
    }

    #[test]
    fn bad_patterns_are_config_errors() {
        let at = ConfigPath::root().field("models").index(3);
        let err = |name, up| Route::compile(name, up, 0, &at).unwrap_err().to_string();
        assert_eq!(err("a*b*", None), r#"models[3].name: "a*b*" has more than one '*'"#);
        assert!(err("gpt", Some("x-*")).starts_with("models[3].model: "));
        assert!(err("g*", Some("*-*")).starts_with("models[3].model: "));
        assert_eq!(err("", None), "models[3].name: must not be empty");

        let at = ConfigPath::root().field("models");
        let twice = vec![
            Route::compile("a", None, 0, &at.index(0)).unwrap(),
            Route::compile("a", None, 1, &at.index(1)).unwrap(),
        ];
        let e = Router::new(twice, &at).unwrap_err().to_string();
        assert_eq!(e, r#"models[1].name: "a" is declared twice"#);
    }
}

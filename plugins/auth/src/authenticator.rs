use std::borrow::Cow;

use hashbrown::HashMap;
use tollgate_core::{HeaderEdits, Metric, Ports, RequestHead};

use crate::api_keys::{ApiKeys, KeyCheck, ModelScope};
use crate::client_ip::ClientAddress;
use crate::error::AuthError;
use crate::issuers::JwtIssuers;
use crate::jwt::{JwksFetch, JwtProviders, JwtVerdict, VerifiedToken};
use crate::metrics;
use crate::routes::{canonical_path, Require, Route, RouteId, Routes};
use crate::sources::{looks_like_jwt, CredentialStrip, Sources};

static ALLOWED: Metric = Metric::new(metrics::ALLOWED);
static ANONYMOUS: Metric = Metric::new(metrics::ANONYMOUS);

/// The compiled `auth` section: built once per configuration, shared by every stream of a worker.
#[derive(Debug)]
pub struct Auth {
    pub(crate) consumers: Vec<ConsumerInfo>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) keys: ApiKeys,
    pub(crate) api_key_sources: Sources,
    pub(crate) jwt_sources: Sources,
    pub(crate) jwt: JwtProviders,
    pub(crate) issuers: JwtIssuers,
    pub(crate) routes: Routes,
    pub(crate) client_address: ClientAddress,
    pub(crate) consumer_header: String,
    /// The consumer header and every JWT claim header: upstreams trust them, so client copies are removed.
    pub(crate) identity_headers: Vec<String>,
    pub(crate) strip: CredentialStrip,
}

/// A declared consumer, with its metric names built once.
#[derive(Debug)]
pub(crate) struct ConsumerInfo {
    pub name: String,
    pub group: Option<String>,
    pub allowed_metric: Metric,
    pub forbidden_metric: Metric,
}

impl ConsumerInfo {
    pub fn new(name: String, group: Option<String>) -> Self {
        ConsumerInfo {
            allowed_metric: Metric::owned(metrics::consumer_metric(&name, "allowed")),
            forbidden_metric: Metric::owned(metrics::consumer_metric(&name, "forbidden")),
            name,
            group,
        }
    }
}

/// Who made a request, as far as auth could tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub name: String,
    /// The declared consumer's group; a JWT subject that is not a declared consumer has none.
    pub group: Option<String>,
    pub via: Via,
}

/// Which credential identified the consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// An API key, by its id.
    ApiKey(String),
    /// A JWT, by the provider that verified it.
    Jwt(String),
}

/// A request auth let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    /// `None` on routes that require no authentication.
    pub consumer: Option<Consumer>,
    /// Credential removal, consumer header, JWT claim headers.
    pub edits: HeaderEdits,
    models: Option<ModelScope>,
}

impl Authorized {
    /// Whether the credential may use `model`. The model is only known once the body has been parsed, so the
    /// pipeline asks after the head was let through (`Auth::check_model` also counts and explains a refusal).
    pub fn may_use_model(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|scope| scope.permits(model))
    }

    /// Whether the credential is limited to some models, so the body must be read to decide.
    pub fn has_model_scope(&self) -> bool {
        self.models.is_some()
    }
}

/// What auth decided about a request head.
#[derive(Debug)]
pub enum AuthDecision {
    Allow(Authorized),
    Deny(AuthError),
    /// A JWT provider has no keys yet: the pipeline makes this call, hands the answer to the JWT provider, and
    /// asks again.
    NeedsKeys(JwksFetch),
}

enum Credential<'h> {
    ApiKey(Cow<'h, str>),
    Jwt(Cow<'h, str>),
}

impl Auth {
    /// Authenticates a request head and checks it against the route rules and key scopes, without a peer
    /// address: routes with IP rules read from `source` refuse it (see `authenticate_from`).
    pub fn authenticate(&self, head: &RequestHead, ports: Ports<'_>) -> AuthDecision {
        self.authenticate_from(head, None, ports)
    }

    /// `authenticate`, with Envoy's downstream peer address (`source.address`, `ip:port`) when known. A
    /// route's IP rules are checked first, so a refused address gets 403 whatever credentials it presents.
    pub fn authenticate_from(
        &self,
        head: &RequestHead,
        source_address: Option<&str>,
        ports: Ports<'_>,
    ) -> AuthDecision {
        let path = canonical_path(head.path_only());
        let route = self.routes.find(&head.method, &path);
        let ip_check = route
            .ip
            .as_ref()
            .map_or(Ok(()), |rules| rules.check(self.client_address.resolve(head, source_address)));
        let decision = match (ip_check, route.require) {
            (Err(denial), _) => AuthDecision::Deny(AuthError::IpDenied(denial)),
            (Ok(()), Require::None) => AuthDecision::Allow(Authorized {
                consumer: None,
                edits: HeaderEdits { set: Vec::new(), remove: self.identity_headers_in(head).collect() },
                models: None,
            }),
            (Ok(()), require) => match self.presented(head, require) {
                None => AuthDecision::Deny(AuthError::MissingCredentials(require)),
                Some(Credential::ApiKey(key)) => self.by_api_key(route, &key, &path, head, ports),
                Some(Credential::Jwt(token)) => self.by_jwt(route, &token, head, ports),
            },
        };
        self.count(&decision, ports);
        decision
    }

    /// The auth route this request meets, for [`Auth::route_prefix`].
    pub fn route_of(&self, head: &RequestHead) -> RouteId {
        self.routes.id_for(&head.method, &canonical_path(head.path_only()))
    }

    /// A route's `path_prefix` (`/` for requests no route matches): operator-written, so a bounded label for
    /// per-route metrics.
    pub fn route_prefix(&self, route: RouteId) -> &str {
        self.routes.prefix_of(route)
    }

    /// Whether some route's IP rules read Envoy's peer address, which the caller must then pass in.
    pub fn wants_source_address(&self) -> bool {
        self.client_address == ClientAddress::Source && self.routes.have_ip_rules()
    }

    /// The JWT providers, for the JWKS work the pipeline schedules (root timer, fetch answers).
    pub fn jwt(&self) -> &JwtProviders {
        &self.jwt
    }

    /// The model check for the body phase: `Err` (already counted) when the key may not use `model`.
    pub fn check_model(
        &self,
        authorized: &Authorized,
        model: &str,
        ports: Ports<'_>,
    ) -> Result<(), AuthError> {
        if authorized.may_use_model(model) {
            return Ok(());
        }
        let (consumer, key_id) = match &authorized.consumer {
            Some(Consumer { name, via: Via::ApiKey(id), .. }) => (name.clone(), id.clone()),
            Some(Consumer { name, .. }) => (name.clone(), String::new()),
            None => (String::new(), String::new()),
        };
        let model: String = model.chars().take(100).collect();
        let error = AuthError::ForbiddenModel { consumer, key_id, model };
        self.count_denied(&error, ports);
        Err(error)
    }

    /// The credential to check: an API key if one is presented, else a JWT. A JWT-shaped value in a source
    /// shared by both kinds (`Authorization: Bearer` by default) is a JWT; anything else there is an API key,
    /// unless no API keys are configured: then it is a JWT too (say `alg: none` with an empty signature), and
    /// is refused as one rather than as an unknown API key.
    fn presented<'h>(&self, head: &'h RequestHead, require: Require) -> Option<Credential<'h>> {
        let jwt_enabled = !self.issuers.is_empty();
        if require.accepts_api_keys() {
            let shared_jwt = |src| jwt_enabled && self.jwt_sources.contains(src);
            let all_jwt = require.accepts_jwt() && self.keys.is_empty();
            for source in self.api_key_sources.iter() {
                match source.extract(head) {
                    Some(value) if shared_jwt(source) && (all_jwt || looks_like_jwt(&value)) => continue,
                    Some(value) => return Some(Credential::ApiKey(value)),
                    None => {}
                }
            }
        }
        if require.accepts_jwt() {
            let shared_key = |src| !self.keys.is_empty() && self.api_key_sources.contains(src);
            for source in self.jwt_sources.iter() {
                match source.extract(head) {
                    Some(value) if shared_key(source) && !looks_like_jwt(&value) => continue,
                    Some(value) => return Some(Credential::Jwt(value)),
                    None => {}
                }
            }
        }
        None
    }

    fn by_api_key(
        &self,
        route: &Route,
        key: &str,
        path: &str,
        head: &RequestHead,
        ports: Ports<'_>,
    ) -> AuthDecision {
        let key = match self.keys.check(key, ports.clock.now()) {
            KeyCheck::Valid(key) => key,
            KeyCheck::Expired(key) => {
                return AuthDecision::Deny(AuthError::ExpiredApiKey { key_id: key.id.clone() })
            }
            KeyCheck::Unknown => return AuthDecision::Deny(AuthError::InvalidApiKey),
        };
        let Some(info) = self.consumers.get(key.consumer) else {
            return AuthDecision::Deny(AuthError::InvalidApiKey);
        };
        if let Err(error) = permits(route, &info.name, info.group.as_deref(), &head.method) {
            return AuthDecision::Deny(error);
        }
        if !key.permits_path(path) {
            return AuthDecision::Deny(AuthError::KeyRouteScope {
                consumer: info.name.clone(),
                key_id: key.id.clone(),
            });
        }
        AuthDecision::Allow(Authorized {
            edits: self.edits(head, &info.name, Vec::new()),
            consumer: Some(Consumer {
                name: info.name.clone(),
                group: info.group.clone(),
                via: Via::ApiKey(key.id.clone()),
            }),
            models: key.models.clone(),
        })
    }

    /// Tries the providers that fit the token (see `JwtIssuers::candidates`): the first that verifies it wins,
    /// and one that has no keys yet pauses the request for a JWKS fetch. If all reject it, the first
    /// rejection is reported.
    fn by_jwt(&self, route: &Route, token: &str, head: &RequestHead, ports: Ports<'_>) -> AuthDecision {
        let mut rejection = None;
        for provider in self.issuers.candidates(&route.jwt_providers, token) {
            match self.jwt.verify(provider, token, ports) {
                None => {}
                Some(JwtVerdict::Valid(verified)) => return self.admit_jwt(route, verified, head),
                Some(JwtVerdict::NeedsKeys(fetch)) => return AuthDecision::NeedsKeys(fetch),
                Some(JwtVerdict::Rejected(r)) => {
                    rejection.get_or_insert(r);
                }
            }
        }
        AuthDecision::Deny(rejection.map_or(AuthError::MissingCredentials(route.require), AuthError::Jwt))
    }

    fn admit_jwt(&self, route: &Route, verified: VerifiedToken, head: &RequestHead) -> AuthDecision {
        let name = header_safe(&verified.consumer);
        let group = self.declared(&name).and_then(|c| c.group.clone());
        if let Err(error) = permits(route, &name, group.as_deref(), &head.method) {
            return AuthDecision::Deny(error);
        }
        let claims = verified.headers.into_iter().map(|(n, v)| (n, header_safe(&v))).collect();
        AuthDecision::Allow(Authorized {
            edits: self.edits(head, &name, claims),
            consumer: Some(Consumer { name, group, via: Via::Jwt(verified.provider) }),
            models: None,
        })
    }

    fn edits(&self, head: &RequestHead, consumer: &str, claims: Vec<(String, String)>) -> HeaderEdits {
        let mut edits = HeaderEdits::default();
        self.strip.edits(head, &mut edits);
        edits.remove.extend(self.identity_headers_in(head));
        edits.set.push((self.consumer_header.clone(), consumer.to_string()));
        edits.set.extend(claims);
        edits
    }

    /// The identity headers a client sent (only those need removing: each removal is a host call).
    fn identity_headers_in<'a>(&'a self, head: &'a RequestHead) -> impl Iterator<Item = String> + 'a {
        self.identity_headers.iter().filter(|name| head.headers.contains(name)).cloned()
    }

    fn declared(&self, name: &str) -> Option<&ConsumerInfo> {
        self.by_name.get(name).and_then(|&i| self.consumers.get(i))
    }

    fn count(&self, decision: &AuthDecision, ports: Ports<'_>) {
        match decision {
            AuthDecision::Allow(Authorized { consumer: Some(consumer), .. }) => {
                ports.metrics.count(&ALLOWED, 1);
                match (self.declared(&consumer.name), &consumer.via) {
                    (Some(info), _) => ports.metrics.count(&info.allowed_metric, 1),
                    (None, Via::Jwt(provider)) => match self.jwt.allowed_metric(provider) {
                        Some(metric) => ports.metrics.count(metric, 1),
                        None => ports.metrics.increment(&metrics::provider_metric(provider), 1),
                    },
                    (None, Via::ApiKey(_)) => {}
                }
            }
            AuthDecision::Allow(Authorized { consumer: None, .. }) => ports.metrics.count(&ANONYMOUS, 1),
            AuthDecision::Deny(error) => self.count_denied(error, ports),
            AuthDecision::NeedsKeys(_) => {}
        }
    }

    fn count_denied(&self, error: &AuthError, ports: Ports<'_>) {
        ports.metrics.increment(metrics::outcome(error.outcome()), 1);
        if let Some(info) = error.consumer().and_then(|name| self.declared(name)) {
            ports.metrics.count(&info.forbidden_metric, 1);
        }
    }
}

/// Whether an authenticated consumer may use the route, and with this method.
fn permits(route: &Route, consumer: &str, group: Option<&str>, method: &str) -> Result<(), AuthError> {
    if !route.permits(consumer, group) {
        return Err(AuthError::ForbiddenConsumer { consumer: consumer.to_string() });
    }
    if !route.consumer_methods.permits(consumer, group, method) {
        let method: String = method.chars().take(32).collect();
        return Err(AuthError::MethodNotAllowedForConsumer { consumer: consumer.to_string(), method });
    }
    Ok(())
}

/// Claim values come from the token: control characters would let them inject headers.
fn header_safe(value: &str) -> String {
    value.chars().filter(|c| !c.is_control() || *c == '\t').collect()
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod jwt_tests;
#[cfg(test)]
mod tests;

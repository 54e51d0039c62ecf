//! JWT verification for `auth.jwt_providers`: signatures (jsonwebtoken, pure-Rust crypto), claims checked
//! against the host clock, keys from inline JWKS, PEM, HMAC secrets or a remote JWKS shared by all workers,
//! and a per-worker cache of tokens already verified.
//!
//! Like every plugin this is pure: values in, decisions out, side effects only through `Ports`.
//!
//! * Config: `JwtProviders::compile(raw, &path)` turns `Vec<RawJwtProvider>` into the hot-path set, with
//!   errors naming the JSON path. Allowed algorithms must fit the keys (HMAC and public-key algorithms never
//!   mix in one provider, a remote JWKS never supplies HMAC secrets).
//! * Request path: `verify(provider, token, ports)` returns a `JwtVerdict`:
//!   - `Valid(VerifiedToken)`: consumer, `claims_to_headers` headers, expiry;
//!   - `Rejected(JwtRejection)`: with `code()`, `status()` and a message that never quotes the token;
//!   - `NeedsKeys(JwksFetch)`: pause the request, make `fetch.call` (proxy-wasm `http_call`), pass the
//!     outcome to `on_jwks_response`, then call `verify` again. Asked at most once per provider per
//!     `min_refresh_interval_s` across all workers (a shared-store CAS decides who fetches), so a burst of
//!     tokens with unknown `kid`s yields one fetch and `UnknownKey` rejections for the rest.
//! * Root timer (every `tick_period()`): `due_fetches(ports)` lists JWKS downloads that are due; make each
//!   call and hand its answer to `on_jwks_response`. A failed refresh keeps the old keys, served until
//!   `refresh_interval_s + max_stale_s` after they were fetched; beyond that tokens get `KeysUnavailable`.
//!
//! Checks happen in this order, so malformed input never reaches cryptography: size, token cache (SHA-256
//! of the token), shape and encoding, `alg` (never `none`, only the provider's list), `crit`, `kid`
//! characters, JSON claims object, key selection (by `kid` when present, else every key of the algorithm's
//! type), signature, then `exp` (required) / `nbf` with leeway, issuer, audience, required claims and the
//! consumer claim. Header-supplied keys (`jwk`, `jku`, `x5u`) are ignored.

mod claims;
mod config;
mod crypto;
mod jwks_cache;
mod keys;
mod pem;
mod provider;
mod token;
mod token_cache;
mod verdict;

#[cfg(test)]
mod tests;

use std::time::Duration;

use tollgate_core::{CallOutcome, ConfigError, ConfigPath, Ports};

pub use config::{RawJwtKeys, RawJwtProvider, RawRemoteJwks, SecretEncoding};
pub use jwks_cache::{JwksError, JWKS_STORE_PREFIX};
pub use provider::{JwtProvider, JWT_CACHE_HITS_TOTAL, JWT_REJECTED_TOTAL, JWT_VALID_TOTAL};
pub use verdict::{JwksFetch, JwtRejection, JwtVerdict, VerifiedToken};

/// Counter of JWKS documents fetched and stored.
pub const JWKS_FETCHED_TOTAL: &str = "tollgate_jwks_fetched_total";
/// Counter of JWKS fetches that failed or returned an unusable document.
pub const JWKS_FETCH_FAILURES_TOTAL: &str = "tollgate_jwks_fetch_failures_total";

/// Every configured JWT provider, compiled. Built once per configuration, one instance per worker.
#[derive(Debug, Default)]
pub struct JwtProviders {
    providers: Vec<JwtProvider>,
}

impl JwtProviders {
    /// Compiles `auth.jwt_providers`; `path` is the path of that list.
    pub fn compile(raw: Vec<RawJwtProvider>, path: &ConfigPath) -> Result<Self, ConfigError> {
        let mut providers: Vec<JwtProvider> = Vec::with_capacity(raw.len());
        for (i, raw) in raw.into_iter().enumerate() {
            let at = path.index(i);
            let (settings, keys) = config::compile(raw, &at)?;
            if providers.iter().any(|p| p.name() == settings.name) {
                return Err(at.field("name").error(format!("provider {:?} is defined twice", settings.name)));
            }
            providers.push(JwtProvider::new(settings, keys));
        }
        Ok(JwtProviders { providers })
    }

    pub fn get(&self, name: &str) -> Option<&JwtProvider> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// The counter of a provider's admitted subjects that are not declared consumers.
    pub fn allowed_metric(&self, provider: &str) -> Option<&tollgate_core::Metric> {
        self.get(provider).map(JwtProvider::allowed_metric)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(JwtProvider::name)
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Verifies `token` (the bare token string) with the named provider; `None` when no provider has that
    /// name (routes may only name configured providers, so the authenticator never asks for one).
    pub fn verify(&self, provider: &str, token: &str, ports: Ports<'_>) -> Option<JwtVerdict> {
        self.get(provider).map(|p| p.verify(token, ports))
    }

    /// How often the root context should call `due_fetches`; `None` when no provider has a remote JWKS.
    pub fn tick_period(&self) -> Option<Duration> {
        let shortest =
            self.providers.iter().filter_map(|p| p.remote()).map(|r| r.settings().min_refresh_interval_s);
        shortest.min().map(Duration::from_secs)
    }

    /// JWKS downloads due now: never fetched, past `refresh_interval_s`, or retrying after a failure. Each
    /// is claimed through the shared store, so across all workers a provider is fetched at most once per
    /// `min_refresh_interval_s`.
    pub fn due_fetches(&self, ports: Ports<'_>) -> Vec<JwksFetch> {
        self.providers.iter().filter_map(|p| p.remote()?.due(ports)).collect()
    }

    /// The answer to a `JwksFetch` (from `due_fetches` or `NeedsKeys`): a valid document becomes the copy
    /// every worker uses; anything else leaves the previous copy in place. Returns the number of usable
    /// keys stored, or why nothing was stored (worth a log line).
    pub fn on_jwks_response(
        &self,
        provider: &str,
        outcome: &CallOutcome,
        ports: Ports<'_>,
    ) -> Result<usize, JwksError> {
        let remote = self.get(provider).and_then(JwtProvider::remote);
        let result = match remote {
            Some(remote) => remote.store_response(outcome, ports),
            None => Err(JwksError::NotRemote(provider.to_string())),
        };
        let metric = if result.is_ok() { JWKS_FETCHED_TOTAL } else { JWKS_FETCH_FAILURES_TOTAL };
        ports.metrics.increment(metric, 1);
        result
    }
}

use std::sync::Arc;

use tollgate_core::{Metric, Ports};

use super::claims;
use super::config::{CompiledKeys, Settings};
use super::jwks_cache::{Freshness, RemoteJwks};
use super::keys::KeySet;
use super::token::{self, ParsedToken};
use super::token_cache::TokenCache;
use super::{JwtRejection, JwtVerdict, VerifiedToken};

/// Counter of tokens accepted (cache hits included).
pub const JWT_VALID_TOTAL: &str = "tollgate_jwt_valid_total";
/// Counter of tokens refused.
pub const JWT_REJECTED_TOTAL: &str = "tollgate_jwt_rejected_total";
/// Counter of tokens accepted from the per-worker cache without a signature check.
pub const JWT_CACHE_HITS_TOTAL: &str = "tollgate_jwt_cache_hits_total";

static VALID: Metric = Metric::new(JWT_VALID_TOTAL);
static REJECTED: Metric = Metric::new(JWT_REJECTED_TOTAL);
static CACHE_HITS: Metric = Metric::new(JWT_CACHE_HITS_TOTAL);

/// One configured issuer: its settings, its keys, and this worker's cache of tokens it verified.
#[derive(Debug)]
pub struct JwtProvider {
    settings: Settings,
    keys: ProviderKeys,
    verified: TokenCache,
    /// `tollgate_auth.jwt.<name>.allowed`, for admitted subjects that are not declared consumers.
    allowed_metric: Metric,
}

#[derive(Debug)]
enum ProviderKeys {
    Static(Arc<KeySet>),
    Remote(Box<RemoteJwks>),
}

enum KeyLookup {
    Found(Arc<KeySet>),
    Verdict(JwtVerdict),
}

impl JwtProvider {
    pub(crate) fn new(settings: Settings, keys: CompiledKeys) -> Self {
        let keys = match keys {
            CompiledKeys::Static(keys) => ProviderKeys::Static(Arc::new(keys)),
            CompiledKeys::Remote(remote) => {
                ProviderKeys::Remote(Box::new(RemoteJwks::new(&settings.name, remote, &settings.algorithms)))
            }
        };
        let verified = TokenCache::new(settings.token_cache_size);
        let allowed_metric = Metric::owned(crate::metrics::provider_metric(&settings.name));
        JwtProvider { settings, keys, verified, allowed_metric }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The counter of admitted subjects that are not declared consumers.
    pub fn allowed_metric(&self) -> &Metric {
        &self.allowed_metric
    }

    /// The upstream headers `claims_to_headers` may set. The caller should strip client-sent copies of
    /// them from every request this provider guards, so a client cannot pose as a claim.
    pub fn claim_header_names(&self) -> impl Iterator<Item = &str> {
        self.settings.claims_to_headers.iter().map(|(_, header)| header.as_str())
    }

    /// Verifies one token (the raw string, without any `Bearer ` prefix).
    pub fn verify(&self, token: &str, ports: Ports<'_>) -> JwtVerdict {
        let verdict = self.judge(token, ports);
        match &verdict {
            JwtVerdict::Valid(_) => ports.metrics.count(&VALID, 1),
            JwtVerdict::Rejected(_) => ports.metrics.count(&REJECTED, 1),
            JwtVerdict::NeedsKeys(_) => {}
        }
        verdict
    }

    pub(crate) fn remote(&self) -> Option<&RemoteJwks> {
        match &self.keys {
            ProviderKeys::Remote(remote) => Some(remote),
            ProviderKeys::Static(_) => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.verified.len()
    }

    fn judge(&self, token: &str, ports: Ports<'_>) -> JwtVerdict {
        let reject = JwtVerdict::Rejected;
        if token.len() > self.settings.max_token_bytes {
            return reject(JwtRejection::TooLarge { max: self.settings.max_token_bytes });
        }
        let now = ports.clock.now();
        if let Some(hit) = self.verified.get(token, now) {
            ports.metrics.count(&CACHE_HITS, 1);
            return JwtVerdict::Valid(hit);
        }
        let parsed = match token::parse(token, &self.settings.algorithms) {
            Ok(parsed) => parsed,
            Err(rejection) => return reject(rejection),
        };
        let keys = match self.keys_for(ports) {
            KeyLookup::Found(keys) => keys,
            KeyLookup::Verdict(verdict) => return verdict,
        };
        if let Some(refusal) = self.check_signature(&keys, &parsed, ports) {
            return refusal;
        }
        let accepted = match claims::check(&parsed.claims, &self.settings, now) {
            Ok(accepted) => accepted,
            Err(rejection) => return reject(rejection),
        };
        let verified = VerifiedToken {
            provider: self.settings.name.clone(),
            consumer: accepted.consumer,
            headers: accepted.headers,
            expires_at: accepted.expires_at,
        };
        self.verified.insert(token, verified.clone(), now);
        JwtVerdict::Valid(verified)
    }

    fn keys_for(&self, ports: Ports<'_>) -> KeyLookup {
        let remote = match &self.keys {
            ProviderKeys::Static(keys) => return KeyLookup::Found(Arc::clone(keys)),
            ProviderKeys::Remote(remote) => remote,
        };
        match remote.current(ports) {
            Some((keys, Freshness::Fresh | Freshness::RefreshDue)) => KeyLookup::Found(keys),
            None | Some((_, Freshness::Expired)) => {
                KeyLookup::Verdict(self.fetch_or(JwtRejection::KeysUnavailable, ports))
            }
        }
    }

    /// `None` when some key verifies the signature; otherwise the verdict to return.
    fn check_signature(
        &self,
        keys: &KeySet,
        parsed: &ParsedToken<'_>,
        ports: Ports<'_>,
    ) -> Option<JwtVerdict> {
        let mut candidates = keys.candidates(parsed.alg, parsed.kid.as_deref()).peekable();
        if candidates.peek().is_none() {
            // The issuer may have rotated in a key we have not seen yet.
            return Some(self.fetch_or(JwtRejection::UnknownKey, ports));
        }
        if candidates.any(|key| key.verifies(parsed)) {
            None
        } else {
            Some(JwtVerdict::Rejected(JwtRejection::BadSignature))
        }
    }

    /// Asks for a JWKS fetch if this provider has a remote JWKS and this caller wins the claim; otherwise
    /// refuses with `rejection`.
    fn fetch_or(&self, rejection: JwtRejection, ports: Ports<'_>) -> JwtVerdict {
        match self.remote() {
            Some(remote) if remote.try_claim(ports) => JwtVerdict::NeedsKeys(remote.fetch()),
            _ => JwtVerdict::Rejected(rejection),
        }
    }
}

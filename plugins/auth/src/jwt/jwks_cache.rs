//! The shared copy of a remote JWKS. One entry per provider in the `SharedStore` holds the last good
//! document and when it was fetched; a second entry records the last fetch attempt and is written with
//! compare-and-swap, which is how one worker claims the right to fetch and every other worker stays quiet
//! for `min_refresh_interval_s`. Each worker memoizes the parsed keys by the entry's CAS version.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::SystemTime;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tollgate_core::{CallOutcome, CasToken, OutboundCall, Ports, StoreError};

use super::config::RemoteSettings;
use super::keys::{parse_jwks, KeySet};
use super::JwksFetch;

/// Shared-store key prefix; bump the version when the stored format changes.
// Spelled out (consts cannot concatenate); a test holds them to tollgate_core::STORE_PREFIX.
pub const JWKS_STORE_PREFIX: &str = "tollgate/v1/jwks";
const FETCH_STORE_PREFIX: &str = "tollgate/v1/jwks-fetch";
const MAX_JWKS_BYTES: usize = 256 * 1024;
const STORE_RETRIES: usize = 4;

/// How old the shared copy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    /// Older than `refresh_interval_s` but within `max_stale_s` beyond it: still served (this is also the
    /// state after failed refreshes) while the root timer tries again.
    RefreshDue,
    /// Too old to trust.
    Expired,
}

/// Why a fetched JWKS was not stored. The previous copy, if any, stays in use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS request failed: {0}")]
    CallFailed(String),
    #[error("JWKS endpoint answered status {0}")]
    Status(u16),
    #[error("JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("JWKS document is not JSON")]
    NotJson,
    #[error("JWKS document is invalid: {0}")]
    Invalid(String),
    #[error("JWKS holds no key usable with the provider's algorithms")]
    NoUsableKeys,
    #[error("shared store refused the JWKS: {0}")]
    Store(String),
    #[error("JWT provider {0:?} has no remote JWKS")]
    NotRemote(String),
}

#[derive(Serialize, Deserialize)]
struct StoredJwks {
    fetched_at: u64,
    jwks: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct FetchAttempt {
    attempt_at: u64,
}

#[derive(Debug)]
struct Memo {
    cas: CasToken,
    fetched_at: u64,
    keys: Arc<KeySet>,
}

#[derive(Debug)]
pub(crate) struct RemoteJwks {
    provider: String,
    settings: RemoteSettings,
    algorithms: Vec<Algorithm>,
    keys_key: String,
    fetch_key: String,
    memo: RefCell<Option<Memo>>,
}

impl RemoteJwks {
    pub fn new(provider: &str, settings: RemoteSettings, algorithms: &[Algorithm]) -> Self {
        // The source is part of the key so a config that points a provider elsewhere starts afresh.
        let source = format!("{}\n{}\n{}", settings.cluster, settings.authority, settings.path);
        let source = hex::encode(Sha256::digest(source.as_bytes()).get(..6).unwrap_or_default());
        RemoteJwks {
            provider: provider.to_string(),
            keys_key: format!("{JWKS_STORE_PREFIX}/{provider}/{source}"),
            fetch_key: format!("{FETCH_STORE_PREFIX}/{provider}/{source}"),
            settings,
            algorithms: algorithms.to_vec(),
            memo: RefCell::default(),
        }
    }

    #[cfg(test)]
    pub fn store_key(&self) -> &str {
        &self.keys_key
    }

    pub fn settings(&self) -> &RemoteSettings {
        &self.settings
    }

    pub fn fetch(&self) -> JwksFetch {
        let s = &self.settings;
        let mut call = OutboundCall::get(&s.cluster, &s.authority, &s.path, s.timeout);
        call.headers.push(("accept".into(), "application/json".into()));
        JwksFetch { provider: self.provider.clone(), call }
    }

    /// The shared keys and how old they are; `None` when nothing usable was ever stored.
    pub fn current(&self, ports: Ports<'_>) -> Option<(Arc<KeySet>, Freshness)> {
        let (keys, fetched_at) = self.load(ports)?;
        let age = now_secs(ports).saturating_sub(fetched_at);
        let s = &self.settings;
        let freshness = if age < s.refresh_interval_s {
            Freshness::Fresh
        } else if age < s.refresh_interval_s.saturating_add(s.max_stale_s) {
            Freshness::RefreshDue
        } else {
            Freshness::Expired
        };
        Some((keys, freshness))
    }

    /// Claims the right to fetch now: true for at most one caller, across all workers, per
    /// `min_refresh_interval_s`.
    pub fn try_claim(&self, ports: Ports<'_>) -> bool {
        let now = now_secs(ports);
        let Ok(record) = serde_json::to_vec(&FetchAttempt { attempt_at: now }) else {
            return false;
        };
        match ports.store.get(&self.fetch_key) {
            // The store has no create-if-absent, so two workers starting at once may both fetch, once.
            Ok(None) => ports.store.set(&self.fetch_key, &record, None).is_ok(),
            Ok(Some((bytes, cas))) => {
                let last = serde_json::from_slice::<FetchAttempt>(&bytes).ok().map(|a| a.attempt_at);
                // A clock that went backwards must not block fetching until it catches up.
                let too_soon =
                    last.is_some_and(|last| now >= last && now - last < self.settings.min_refresh_interval_s);
                !too_soon && ports.store.set(&self.fetch_key, &record, Some(cas)).is_ok()
            }
            Err(_) => false,
        }
    }

    /// The fetch the root timer should make now, if the copy is missing or due and no worker fetched
    /// within the minimum interval.
    pub fn due(&self, ports: Ports<'_>) -> Option<JwksFetch> {
        let due = !matches!(self.current(ports), Some((_, Freshness::Fresh)));
        (due && self.try_claim(ports)).then(|| self.fetch())
    }

    /// Validates a fetched document and makes it the shared copy; returns how many keys it holds.
    pub fn store_response(&self, outcome: &CallOutcome, ports: Ports<'_>) -> Result<usize, JwksError> {
        let body = match outcome {
            CallOutcome::Failed { reason } => return Err(JwksError::CallFailed(reason.clone())),
            CallOutcome::Response { status, .. } => outcome.ok_body().ok_or(JwksError::Status(*status))?,
        };
        if body.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let jwks: serde_json::Value = serde_json::from_slice(body).map_err(|_| JwksError::NotJson)?;
        let parsed = parse_jwks(&jwks, false).map_err(JwksError::Invalid)?;
        let usable =
            parsed.keys.keys().iter().filter(|k| self.algorithms.iter().any(|a| k.kind.verifies(*a)));
        let usable = usable.count();
        if usable == 0 {
            return Err(JwksError::NoUsableKeys);
        }
        let fetched_at = now_secs(ports);
        let record = serde_json::to_vec(&StoredJwks { fetched_at, jwks }).map_err(|_| JwksError::NotJson)?;
        for _ in 0..STORE_RETRIES {
            let cas = match ports.store.get(&self.keys_key) {
                Ok(Some((bytes, cas))) => {
                    let stored = serde_json::from_slice::<StoredJwks>(&bytes).ok();
                    if stored.is_some_and(|s| s.fetched_at > fetched_at) {
                        // Another worker stored a newer copy while this answer was in flight.
                        return Ok(usable);
                    }
                    Some(cas)
                }
                Ok(None) => None,
                Err(e) => return Err(JwksError::Store(e.to_string())),
            };
            match ports.store.set(&self.keys_key, &record, cas) {
                Ok(()) => return Ok(usable),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(JwksError::Store(e.to_string())),
            }
        }
        Err(JwksError::Store(StoreError::CasMismatch.to_string()))
    }

    fn load(&self, ports: Ports<'_>) -> Option<(Arc<KeySet>, u64)> {
        let mut memo = self.memo.try_borrow_mut().ok()?;
        let (bytes, cas) = match ports.store.get(&self.keys_key) {
            Ok(Some(entry)) => entry,
            Ok(None) => return None,
            // The store failing should not take keys this worker already holds away from it.
            Err(_) => return memo.as_ref().map(|m| (Arc::clone(&m.keys), m.fetched_at)),
        };
        if let Some(m) = memo.as_ref().filter(|m| m.cas == cas) {
            return Some((Arc::clone(&m.keys), m.fetched_at));
        }
        let stored: StoredJwks = serde_json::from_slice(&bytes).ok()?;
        let keys = Arc::new(parse_jwks(&stored.jwks, false).ok()?.keys);
        *memo = Some(Memo { cas, fetched_at: stored.fetched_at, keys: Arc::clone(&keys) });
        Some((keys, stored.fetched_at))
    }
}

fn now_secs(ports: Ports<'_>) -> u64 {
    ports.clock.now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

//! Failover and key pools: a provider that fails (429, 5xx, Envoy's own 503/504 for a connection that failed
//! or timed out) sits out `failover.cooldown_seconds`, and new requests for its models go to the model's next
//! provider; a pooled key the provider refuses (401) or throttles (429) sits out as long, and the pool's
//! other keys take its turns. Cooldowns live in Envoy's shared data, so every worker sees them at once:
//! one key per provider or pooled key (`tollgate/v1/ai/cooldown/<provider>[/key/<n>]`), holding the instant
//! (nanoseconds since the epoch, little-endian) the cooldown ends.
//!
//! A route without fallbacks and a provider with one key read nothing: the usual request makes no extra host
//! call.

use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use tollgate_core::{Ports, SharedStore, STORE_PREFIX};

use super::metrics::{COOLDOWNS, FAILOVERS, KEY_COOLDOWNS};
use super::{Ai, Forwarded};
use crate::router::RouteMatch;

/// The provider (index), upstream model and pooled key a request goes to.
pub(crate) struct Choice {
    pub provider: usize,
    pub upstream_model: String,
    pub key: usize,
    /// Not the model's first provider: the ones before were cooling down.
    pub failed_over: bool,
}

fn provider_key(name: &str) -> String {
    format!("{STORE_PREFIX}ai/cooldown/{name}")
}

fn pool_key(name: &str, key: usize) -> String {
    format!("{STORE_PREFIX}ai/cooldown/{name}/key/{key}")
}

/// When the cooldown under `key` ends, if one was ever set and can be read.
fn cooling_until(store: &dyn SharedStore, key: &str) -> Option<u64> {
    let (bytes, _) = store.get(key).ok()??;
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

pub(crate) fn now_nanos(ports: Ports<'_>) -> u64 {
    let since = ports.clock.now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

impl Ai {
    /// Where a request for `found` goes: the first of its providers not cooling down (all cooling: the one
    /// back soonest), and the next of that provider's keys not cooling down.
    pub(crate) fn choose(&self, found: RouteMatch<'_>, ports: Ports<'_>) -> Choice {
        let RouteMatch { route, upstream_model, fallbacks } = found;
        let mut choice = Choice { provider: route.provider, upstream_model, key: 0, failed_over: false };
        let mut now = None;
        if !fallbacks.is_empty() {
            let now = *now.get_or_insert_with(|| now_nanos(ports));
            let mut soonest: Option<(u64, usize, String)> = None;
            let candidates =
                std::iter::once((route.provider, choice.upstream_model.clone())).chain(fallbacks);
            for (position, (provider, model)) in candidates.enumerate() {
                let name = self.config.providers.get(provider).map_or("", |p| p.settings.name.as_str());
                match cooling_until(ports.store, &provider_key(name)) {
                    Some(until) if until > now => {
                        if soonest.as_ref().is_none_or(|(best, _, _)| until < *best) {
                            soonest = Some((until, provider, model));
                        }
                    }
                    _ => {
                        choice =
                            Choice { provider, upstream_model: model, key: 0, failed_over: position > 0 };
                        soonest = None;
                        break;
                    }
                }
            }
            if let Some((_, provider, model)) = soonest {
                let failed_over = provider != route.provider;
                choice = Choice { provider, upstream_model: model, key: 0, failed_over };
            }
        }
        choice.key = self.choose_key(choice.provider, now, ports);
        choice
    }

    /// The next key of the provider's pool, in turn, skipping keys that cool down (all cooling: the next).
    fn choose_key(&self, provider: usize, now: Option<u64>, ports: Ports<'_>) -> usize {
        let keys = self.adapters.get(provider).map_or(1, Vec::len);
        if keys <= 1 {
            return 0;
        }
        let turn = self.next_key.get(provider).map_or(0, |n| n.fetch_add(1, Ordering::Relaxed));
        let first = usize::try_from(turn % keys as u64).unwrap_or(0);
        let now = now.unwrap_or_else(|| now_nanos(ports));
        let name = self.config.providers.get(provider).map_or("", |p| p.settings.name.as_str());
        (0..keys)
            .map(|offset| (first + offset) % keys)
            .find(|key| cooling_until(ports.store, &pool_key(name, *key)).is_none_or(|until| until <= now))
            .unwrap_or(first)
    }

    /// The provider answered `status`: a failure starts a cooldown for the provider or, in a pool, the key.
    pub(crate) fn note_status(&self, forwarded: &Forwarded, status: u16, ports: Ports<'_>) {
        let pooled = self.adapters.get(forwarded.provider).is_some_and(|keys| keys.len() > 1);
        let Some(provider) = self.config.providers.get(forwarded.provider) else { return };
        let name = provider.settings.name.as_str();
        let (key, metric) = match status {
            401 | 429 if pooled => (pool_key(name, forwarded.key), KEY_COOLDOWNS),
            429 | 500..=599 => (provider_key(name), COOLDOWNS),
            _ => return,
        };
        let until = now_nanos(ports).saturating_add(self.config.cooldown_nanos);
        if ports.store.set(&key, &until.to_le_bytes(), None).is_ok() {
            forwarded.labels.count(ports, metric);
        }
    }

    /// Counts a request that went to a fallback.
    pub(crate) fn note_choice(&self, choice: &Choice, forwarded: &Forwarded, ports: Ports<'_>) {
        if choice.failed_over {
            forwarded.labels.count(ports, FAILOVERS);
        }
    }
}

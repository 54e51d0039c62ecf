//! Per-worker memory of tokens that already verified, so a client repeating its token skips the signature
//! check. Keyed by the token text itself, as Envoy's `jwt_authn` cache is: a hit costs one hash of the token
//! and one comparison with the kept copy, where a SHA-256 key cost a compression per 64 bytes of token (most
//! of a cached token's cost). The comparison takes the same time however much of a kept token a presented
//! one shares, so timing cannot reveal a cached token's signature. Only tokens that verified are kept, so a
//! client cannot fill it with junk.
//! Bounded by count and by [`MAX_CACHED_TOKEN_BYTES`] of token text, oldest first out; an entry dies at the
//! token's `exp`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::{Equivalent, HashMap};

use super::VerifiedToken;
use crate::api_keys::same_secret;

/// The most token text one worker's cache of one provider keeps (1 MiB: 1,024 tokens of 1 KiB).
pub(crate) const MAX_CACHED_TOKEN_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct TokenCache {
    capacity: usize,
    // A worker is single-threaded; the cache is filled from `&self` verification calls.
    inner: RefCell<Entries>,
}

/// A kept token, compared in constant time (see `Presented`).
#[derive(PartialEq, Eq, Hash)]
struct Kept(Arc<str>);

/// A presented token, looked up among the kept ones: hashed as they are, compared by `same_secret`.
#[derive(Hash)]
struct Presented<'a>(&'a str);

impl Equivalent<Kept> for Presented<'_> {
    fn equivalent(&self, kept: &Kept) -> bool {
        same_secret(self.0, &kept.0)
    }
}

/// Its `Debug` shows sizes only: the tokens are credentials.
#[derive(Default)]
struct Entries {
    by_token: HashMap<Kept, VerifiedToken>,
    /// Insertion order, oldest first. May still hold keys dropped on expiry (their text too, so `bytes`
    /// counts them), skipped when evicting and pruned once it is twice the capacity.
    order: VecDeque<Arc<str>>,
    /// The total length of the tokens in `order`.
    bytes: usize,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries")
            .field("tokens", &self.by_token.len())
            .field("order", &self.order.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Whether `key` (from `order`) is the map's entry, not a dropped one whose token came back later.
fn is_live(by_token: &HashMap<Kept, VerifiedToken>, key: &Arc<str>) -> bool {
    by_token.get_key_value(&Presented(key)).is_some_and(|(live, _)| Arc::ptr_eq(&live.0, key))
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache { capacity, inner: RefCell::default() }
    }

    /// The remembered verdict, if the token has not expired by `now` (an expired entry is dropped).
    pub fn get(&self, token: &str, now: SystemTime) -> Option<VerifiedToken> {
        let mut entries = self.inner.try_borrow_mut().ok()?;
        let verified = entries.by_token.get(&Presented(token))?;
        if now < verified.expires_at {
            return Some(verified.clone());
        }
        entries.by_token.remove(&Presented(token));
        None
    }

    pub fn insert(&self, token: &str, verified: VerifiedToken, now: SystemTime) {
        if self.capacity == 0 || verified.expires_at <= now || token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        let Ok(mut entries) = self.inner.try_borrow_mut() else {
            return;
        };
        if let Some(kept) = entries.by_token.get_mut(&Presented(token)) {
            *kept = verified;
            return;
        }
        while entries.by_token.len() >= self.capacity
            || entries.bytes.saturating_add(token.len()) > MAX_CACHED_TOKEN_BYTES
        {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.bytes = entries.bytes.saturating_sub(oldest.len());
            if is_live(&entries.by_token, &oldest) {
                entries.by_token.remove(&Presented(&oldest));
            }
        }
        let key: Arc<str> = Arc::from(token);
        entries.bytes = entries.bytes.saturating_add(key.len());
        entries.order.push_back(Arc::clone(&key));
        entries.by_token.insert(Kept(key), verified);
        if entries.order.len() > self.capacity.saturating_mul(2) {
            let Entries { by_token, order, bytes } = &mut *entries;
            order.retain(|key| is_live(by_token, key));
            *bytes = order.iter().map(|key| key.len()).sum();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.try_borrow().map_or(0, |e| e.by_token.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn token(expires_at: SystemTime) -> VerifiedToken {
        VerifiedToken { provider: "p".into(), consumer: "c".into(), headers: vec![], expires_at }
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn entries_die_at_exp() {
        let cache = TokenCache::new(4);
        cache.insert("a.b.c", token(t(100)), t(50));
        assert!(cache.get("a.b.c", t(99)).is_some());
        assert!(cache.get("a.b.d", t(99)).is_none());
        assert!(cache.get("a.b.c", t(100)).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_token_back_after_expiry_is_not_evicted_by_its_old_entry() {
        let cache = TokenCache::new(2);
        cache.insert("a", token(t(10)), t(0));
        assert!(cache.get("a", t(10)).is_none());
        cache.insert("a", token(t(100)), t(10));
        cache.insert("b", token(t(100)), t(10));
        assert!(cache.get("a", t(11)).is_some(), "the stale order entry went first, not the new one");
        assert!(cache.get("b", t(11)).is_some());
    }

    #[test]
    fn the_oldest_entry_goes_first_when_full() {
        let cache = TokenCache::new(2);
        for name in ["a", "b", "c"] {
            cache.insert(name, token(t(100)), t(0));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", t(1)).is_none());
        assert!(cache.get("b", t(1)).is_some());
        assert!(cache.get("c", t(1)).is_some());
    }

    #[test]
    fn churn_keeps_count_and_order_bounded() {
        let cache = TokenCache::new(3);
        for i in 0..1000u64 {
            let name = i.to_string();
            cache.insert(&name, token(t(i + 2)), t(i));
            assert!(cache.get(&name, t(i + 5)).is_none());
            let entries = cache.inner.borrow();
            assert!(entries.by_token.len() <= 3 && entries.order.len() <= 6);
            assert_eq!(entries.bytes, entries.order.iter().map(|k| k.len()).sum::<usize>());
        }
    }

    #[test]
    fn token_text_is_bounded_by_bytes() {
        let cache = TokenCache::new(100_000);
        let big = |i: usize| format!("{i:08}{}", "x".repeat(100_000));
        for i in 0..30 {
            cache.insert(&big(i), token(t(100)), t(0));
        }
        let entries = cache.inner.borrow();
        assert!(entries.bytes <= MAX_CACHED_TOKEN_BYTES);
        assert_eq!(entries.bytes, entries.order.iter().map(|k| k.len()).sum::<usize>());
        assert_eq!(entries.by_token.len(), MAX_CACHED_TOKEN_BYTES / big(0).len());
        drop(entries);
        assert!(cache.get(&big(29), t(1)).is_some());
        assert!(cache.get(&big(0), t(1)).is_none());
    }

    #[test]
    fn debug_output_leaves_the_tokens_out() {
        let cache = TokenCache::new(2);
        cache.insert("eyJ.secret-token.sig", token(t(100)), t(0));
        let shown = format!("{cache:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains("tokens: 1"), "{shown}");
    }

    #[test]
    fn zero_capacity_and_already_expired_tokens_are_not_kept() {
        let off = TokenCache::new(0);
        off.insert("x", token(t(100)), t(0));
        assert_eq!(off.len(), 0);
        let on = TokenCache::new(2);
        on.insert("x", token(t(100)), t(100));
        assert_eq!(on.len(), 0);
    }
}

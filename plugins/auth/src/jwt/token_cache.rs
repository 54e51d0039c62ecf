//! Per-worker memory of tokens that already verified, so a client repeating its token skips the signature
//! check. Keyed by the token's SHA-256 (the token itself is never kept), bounded by count with
//! oldest-first eviction, and each entry dies at the token's `exp`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::SystemTime;

use hashbrown::HashMap;
use sha2::{Digest, Sha256};

use super::VerifiedToken;

pub(crate) type TokenDigest = [u8; 32];

#[derive(Debug)]
pub(crate) struct TokenCache {
    capacity: usize,
    // A worker is single-threaded; the cache is filled from `&self` verification calls.
    inner: RefCell<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_digest: HashMap<TokenDigest, VerifiedToken>,
    /// Insertion order; may hold digests already dropped on expiry, skipped when evicting.
    order: VecDeque<TokenDigest>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache { capacity, inner: RefCell::default() }
    }

    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The remembered verdict, if the token has not expired by `now`.
    pub fn get(&self, digest: &TokenDigest, now: SystemTime) -> Option<VerifiedToken> {
        let mut entries = self.inner.try_borrow_mut().ok()?;
        let token = entries.by_digest.get(digest)?;
        if now < token.expires_at {
            return Some(token.clone());
        }
        entries.by_digest.remove(digest);
        None
    }

    pub fn insert(&self, digest: TokenDigest, token: VerifiedToken, now: SystemTime) {
        if self.capacity == 0 || token.expires_at <= now {
            return;
        }
        let Ok(mut entries) = self.inner.try_borrow_mut() else {
            return;
        };
        if entries.by_digest.contains_key(&digest) {
            entries.by_digest.insert(digest, token);
            return;
        }
        while entries.by_digest.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_digest.remove(&oldest);
        }
        entries.by_digest.insert(digest, token);
        entries.order.push_back(digest);
        if entries.order.len() > self.capacity.saturating_mul(2) {
            let Entries { by_digest, order } = &mut *entries;
            order.retain(|d| by_digest.contains_key(d));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.try_borrow().map_or(0, |e| e.by_digest.len())
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
        let d = TokenCache::digest("a.b.c");
        cache.insert(d, token(t(100)), t(50));
        assert!(cache.get(&d, t(99)).is_some());
        assert!(cache.get(&d, t(100)).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_oldest_entry_goes_first_when_full() {
        let cache = TokenCache::new(2);
        let digests: Vec<_> = ["a", "b", "c"].iter().map(|s| TokenCache::digest(s)).collect();
        for d in &digests {
            cache.insert(*d, token(t(100)), t(0));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&digests[0], t(1)).is_none());
        assert!(cache.get(&digests[2], t(1)).is_some());
    }

    #[test]
    fn churn_keeps_the_order_queue_bounded() {
        let cache = TokenCache::new(3);
        for i in 0..1000u64 {
            let d = TokenCache::digest(&i.to_string());
            cache.insert(d, token(t(i + 2)), t(i));
            assert!(cache.get(&d, t(i + 5)).is_none());
        }
        assert!(cache.inner.borrow().order.len() <= 6);
    }

    #[test]
    fn zero_capacity_and_already_expired_tokens_are_not_kept() {
        let off = TokenCache::new(0);
        off.insert(TokenCache::digest("x"), token(t(100)), t(0));
        assert_eq!(off.len(), 0);
        let on = TokenCache::new(2);
        on.insert(TokenCache::digest("x"), token(t(100)), t(100));
        assert_eq!(on.len(), 0);
    }
}

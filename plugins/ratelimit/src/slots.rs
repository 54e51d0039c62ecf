//! Where limiter state lives in the `SharedStore`, and how it is updated exactly.
//!
//! Proxy-wasm shared data has no delete, so a rule cannot keep one entry per key forever. Each rule owns a
//! fixed ring of `max_keys` slots (`tollgate/v1/rl/<rule>/<n>`); a key hashes to a slot and probes up to
//! `PROBES` neighbours. A slot holds its owner's hash and state, and a slot whose owner is idle (bucket full
//! again, window over) is taken by the next key that needs it: that is eviction, and it loses nothing,
//! since an idle key's state equals a fresh one. Memory is bounded by rules × `max_keys` × 24 bytes.
//!
//! Every write is a compare-and-swap against the version read, retried at most `MAX_ATTEMPTS` times.

use tollgate_core::{CasToken, SharedStore, StoreError};

/// Neighbouring slots a key may use; more spreads collisions, fewer keeps the common read to one `get`.
const PROBES: u32 = 4;
/// CAS attempts before giving up. Each worker is single-threaded, so a conflict needs another worker
/// writing the same slot in between; this many in a row means a key hotter than the store can serialise.
pub const MAX_ATTEMPTS: u32 = 16;
const RECORD_LEN: usize = 24;

/// One slot's content: whose it is and two counters whose meaning belongs to the rule kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Hash of the key's identity; 0 marks a slot nobody owns.
    pub owner: u64,
    pub a: u64,
    pub b: u64,
}

impl Record {
    fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        for (chunk, value) in out.chunks_exact_mut(8).zip([self.owner, self.a, self.b]) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Anything that is not a record we wrote (another version, a truncated value) reads as a free slot.
    fn decode(bytes: &[u8]) -> Record {
        let mut words = bytes.chunks_exact(8).map(|c| c.try_into().map_or(0, u64::from_le_bytes));
        match (bytes.len(), words.next(), words.next(), words.next()) {
            (RECORD_LEN, Some(owner), Some(a), Some(b)) => Record { owner, a, b },
            _ => Record::default(),
        }
    }
}

/// What an update decided: write this record, or leave the store as it is. Either way, return `T`.
pub enum Step<T> {
    Write(Record, T),
    Keep(T),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// `MAX_ATTEMPTS` CAS conflicts in a row.
    Contended,
    /// Every slot the key may use belongs to another key that is still active.
    Full,
    Store(String),
}

/// The slot ring of one rule.
#[derive(Clone, Debug)]
pub struct SlotRing {
    prefix: String,
    slots: u32,
}

impl SlotRing {
    pub fn new(rule: &str, slots: u32) -> SlotRing {
        SlotRing { prefix: format!("{}rl/{rule}/", tollgate_core::STORE_PREFIX), slots: slots.max(1) }
    }

    /// Writes a free record into every slot that does not exist yet. The store cannot create-if-absent, so
    /// two workers creating one slot at once could lose a write; running this from `on_configure`, before
    /// traffic, means the hot path only ever updates existing slots. Existing slots (a config reload) are kept.
    pub fn prepare(&self, store: &dyn SharedStore) -> Result<(), StoreError> {
        for n in 0..self.slots {
            let key = self.key(n);
            if store.get(&key)?.is_none() {
                store.set(&key, &Record::default().encode(), None)?;
            }
        }
        Ok(())
    }

    /// Reads the slot of `owner` (or claims a free or idle one), lets `decide` choose from its current state
    /// (`None`: the key has no state, it starts fresh) and writes the result under CAS, retrying conflicts.
    pub fn update<T>(
        &self,
        store: &dyn SharedStore,
        owner: u64,
        is_idle: impl Fn(&Record) -> bool,
        mut decide: impl FnMut(Option<Record>) -> Step<T>,
    ) -> Result<T, SlotError> {
        let owner = owner.max(1);
        for _ in 0..MAX_ATTEMPTS {
            let (key, current, cas) = self.find(store, owner, &is_idle)?;
            let step = decide(current.filter(|r| r.owner == owner));
            let (record, out) = match step {
                Step::Keep(out) => return Ok(out),
                Step::Write(record, out) => (record, out),
            };
            let record = Record { owner, ..record };
            match store.set(&key, &record.encode(), cas) {
                Ok(()) => return Ok(out),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Unavailable(e)) => return Err(SlotError::Store(e)),
            }
        }
        Err(SlotError::Contended)
    }

    /// The slot to use: the one `owner` already holds, else the first free or idle one in probe order (so
    /// two workers claiming for one new key pick the same slot, and CAS lets only one of them win).
    fn find(
        &self,
        store: &dyn SharedStore,
        owner: u64,
        is_idle: &impl Fn(&Record) -> bool,
    ) -> Result<(String, Option<Record>, Option<CasToken>), SlotError> {
        let mut free = None;
        for i in 0..PROBES.min(self.slots) {
            let n = u32::try_from((owner % u64::from(self.slots) + u64::from(i)) % u64::from(self.slots))
                .unwrap_or(0);
            let key = self.key(n);
            let read = store.get(&key).map_err(|e| SlotError::Store(e.to_string()))?;
            let (record, cas) = match read {
                Some((bytes, cas)) => (Record::decode(&bytes), Some(cas)),
                None => (Record::default(), None),
            };
            if record.owner == owner {
                return Ok((key, Some(record), cas));
            }
            if free.is_none() && (record.owner == 0 || is_idle(&record)) {
                free = Some((key, None, cas));
            }
        }
        free.ok_or(SlotError::Full)
    }

    /// The prefix and the slot number in decimal, written without the formatting machinery (this runs for
    /// every limited request).
    fn key(&self, n: u32) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 10);
        key.push_str(&self.prefix);
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = n;
        loop {
            at = at.saturating_sub(1);
            if let Some(digit) = digits.get_mut(at) {
                *digit = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        key.extend(digits.iter().skip(at).map(|&d| char::from(d)));
        key
    }
}

/// FNV-1a, 64-bit: a hash every worker VM computes identically, unlike std's randomly seeded one.
pub fn identity_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        // A separator that cannot occur in header values keeps ("ab","c") apart from ("a","bc").
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
#[path = "slots/tests.rs"]
mod tests;

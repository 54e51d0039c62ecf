use std::cell::Cell;

use tollgate_core::testing::MemoryHost;

use super::*;

/// A store that answers the next `fail` writes with a CAS mismatch, as if another worker had written first.
struct Conflicting<'a> {
    inner: &'a MemoryHost,
    fail: Cell<u32>,
    writes: Cell<u32>,
}

impl SharedStore for Conflicting<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<CasToken>) -> Result<(), StoreError> {
        self.writes.set(self.writes.get() + 1);
        if self.fail.get() > 0 {
            self.fail.set(self.fail.get() - 1);
            return Err(StoreError::CasMismatch);
        }
        self.inner.set(key, value, cas)
    }
}

fn bump(store: &dyn SharedStore, ring: &SlotRing, owner: u64) -> Result<u64, SlotError> {
    ring.update(
        store,
        owner,
        |_| false,
        |current| {
            let next = current.map_or(1, |r| r.a + 1);
            Step::Write(Record { owner: 0, a: next, b: 0 }, next)
        },
    )
}

#[test]
fn records_round_trip_and_garbage_reads_as_free() {
    let r = Record { owner: 7, a: u64::MAX, b: 3 };
    assert_eq!(Record::decode(&r.encode()), r);
    assert_eq!(Record::decode(b"short"), Record::default());
}

#[test]
fn conflicts_are_retried_until_a_write_lands() {
    let host = MemoryHost::default();
    let store = Conflicting { inner: &host, fail: Cell::new(3), writes: Cell::new(0) };
    let ring = SlotRing::new("r", 8);
    ring.prepare(&host).unwrap();
    assert_eq!(bump(&store, &ring, 42), Ok(1));
    assert_eq!(store.writes.get(), 4);
    assert_eq!(bump(&store, &ring, 42), Ok(2));
}

#[test]
fn endless_conflicts_give_up_after_the_bound() {
    let host = MemoryHost::default();
    let store = Conflicting { inner: &host, fail: Cell::new(u32::MAX), writes: Cell::new(0) };
    let ring = SlotRing::new("r", 8);
    assert_eq!(bump(&store, &ring, 42), Err(SlotError::Contended));
    assert_eq!(store.writes.get(), MAX_ATTEMPTS);
}

#[test]
fn a_real_concurrent_write_is_seen_on_retry() {
    let host = MemoryHost::default();
    let ring = SlotRing::new("r", 1);
    ring.prepare(&host).unwrap();
    // Read, let "another worker" write in between, then write with the stale version.
    let mut interfered = false;
    let out = ring.update(
        &host,
        9,
        |_| false,
        |current| {
            if !interfered {
                interfered = true;
                bump(&host, &ring, 9).unwrap();
            }
            let next = current.map_or(1, |r| r.a + 1);
            Step::Write(Record { owner: 0, a: next, b: 0 }, next)
        },
    );
    assert_eq!(out, Ok(2), "the retry saw the other worker's write");
}

#[test]
fn keys_are_bounded_and_idle_slots_are_reused() {
    let host = MemoryHost::default();
    let ring = SlotRing::new("r", 2);
    ring.prepare(&host).unwrap();
    let busy = |r: &Record| r.a == 0;
    let claim =
        |owner: u64| ring.update(&host, owner, busy, |_| Step::Write(Record { owner: 0, a: 1, b: 0 }, ()));
    assert_eq!(claim(10), Ok(()));
    assert_eq!(claim(11), Ok(()));
    assert_eq!(claim(12), Err(SlotError::Full), "both slots held by active keys");
    // Key 10 goes idle (a = 0 in this test's terms); its slot is taken over.
    ring.update(&host, 10, busy, |_| Step::Write(Record { owner: 0, a: 0, b: 0 }, ())).unwrap();
    assert_eq!(claim(12), Ok(()));
    let owners: Vec<u64> = (0..2)
        .map(|n| Record::decode(&host.get(&format!("tollgate/v1/rl/r/{n}")).unwrap().unwrap().0).owner)
        .collect();
    assert!(owners.contains(&12) && owners.contains(&11) && !owners.contains(&10));
}

#[test]
fn prepare_keeps_existing_state() {
    let host = MemoryHost::default();
    let ring = SlotRing::new("r", 4);
    ring.prepare(&host).unwrap();
    bump(&host, &ring, 5).unwrap();
    ring.prepare(&host).unwrap();
    assert_eq!(bump(&host, &ring, 5), Ok(2));
}

#[test]
fn identities_do_not_run_together() {
    assert_ne!(identity_hash(&["ab", "c"]), identity_hash(&["a", "bc"]));
    assert_eq!(identity_hash(&["x"]), identity_hash(&["x"]));
}

#[test]
fn slot_keys_are_the_prefix_and_the_number_in_decimal() {
    let ring = SlotRing::new("per-consumer", 4);
    for n in [0, 7, 10, 99, 1_000, 4_294_967_295] {
        assert_eq!(ring.key(n), format!("{}rl/per-consumer/{n}", tollgate_core::STORE_PREFIX));
    }
}

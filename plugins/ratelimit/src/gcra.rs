//! The generic cell rate algorithm behind request limits: one timestamp per key (the theoretical arrival
//! time, TAT) says how full the bucket is, so a CAS on a single value keeps a limit exact across workers.

/// A compiled request limit, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    /// Time one request "costs": the period divided by the limit.
    interval: u64,
    /// How far ahead of now the TAT may run: `burst` intervals.
    capacity: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcraOutcome {
    /// Store `tat`; `remaining` more requests would be admitted right now; the bucket is full again after
    /// `reset` nanoseconds.
    Allowed { tat: u64, remaining: u64, reset: u64 },
    /// One request fits again after `retry_after` nanoseconds. `repair` is a TAT to store when the clock
    /// went backwards (see `clamp`); otherwise nothing changes.
    Limited { retry_after: u64, reset: u64, repair: Option<u64> },
}

impl Gcra {
    /// `limit` requests per `period` nanoseconds, at most `burst` of them back to back.
    pub fn new(limit: u64, period: u64, burst: u64) -> Gcra {
        let interval = (period / limit.max(1)).max(1);
        Gcra { interval, capacity: interval.saturating_mul(burst.max(1)) }
    }

    /// Decides one request arriving at `now` against a stored `tat` (0 for a key never seen).
    pub fn decide(&self, tat: u64, now: u64) -> GcraOutcome {
        let clamped = self.clamp(tat, now);
        let start = clamped.max(now);
        let new_tat = start.saturating_add(self.interval);
        let ahead = new_tat - now;
        if ahead > self.capacity {
            let repair = (clamped != tat).then_some(clamped);
            GcraOutcome::Limited { retry_after: ahead - self.capacity, reset: start - now, repair }
        } else {
            GcraOutcome::Allowed {
                tat: new_tat,
                remaining: (self.capacity - ahead) / self.interval,
                reset: ahead,
            }
        }
    }

    /// The TAT after giving back one admission (a later rule refused the request).
    pub fn undo(&self, tat: u64, now: u64) -> u64 {
        self.clamp(tat, now).saturating_sub(self.interval).max(now.min(tat))
    }

    /// A key is idle, and its slot reusable, once its bucket has refilled completely.
    pub fn is_idle(tat: u64, now: u64) -> bool {
        tat <= now
    }

    /// Never more than `capacity` ahead of now in normal operation; if it is, the clock went backwards, and
    /// the bucket counts as just emptied rather than blocking the key for the length of the jump.
    fn clamp(&self, tat: u64, now: u64) -> u64 {
        tat.min(now.saturating_add(self.capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn run(gcra: &Gcra, tat: &mut u64, now: u64) -> bool {
        match gcra.decide(*tat, now) {
            GcraOutcome::Allowed { tat: next, .. } => {
                *tat = next;
                true
            }
            GcraOutcome::Limited { repair, .. } => {
                *tat = repair.unwrap_or(*tat);
                false
            }
        }
    }

    #[test]
    fn a_full_bucket_admits_the_burst_then_refuses() {
        let gcra = Gcra::new(10, 60 * SEC, 3);
        let now = 1_000 * SEC;
        let mut tat = 0;
        let admitted = (0..10).filter(|_| run(&gcra, &mut tat, now)).count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn remaining_counts_down_and_retry_after_is_one_interval() {
        let gcra = Gcra::new(10, 10 * SEC, 10);
        let now = 50 * SEC;
        assert_eq!(gcra.decide(0, now), GcraOutcome::Allowed { tat: now + SEC, remaining: 9, reset: SEC });
        let mut tat = 0;
        for _ in 0..10 {
            assert!(run(&gcra, &mut tat, now));
        }
        assert_eq!(
            gcra.decide(tat, now),
            GcraOutcome::Limited { retry_after: SEC, reset: 10 * SEC, repair: None }
        );
    }

    #[test]
    fn refill_is_exact_at_the_boundary() {
        let gcra = Gcra::new(1, SEC, 1);
        let mut tat = 0;
        let t0 = 7 * SEC;
        assert!(run(&gcra, &mut tat, t0));
        assert!(!run(&gcra, &mut tat, t0 + SEC - 1), "one nanosecond early");
        assert!(run(&gcra, &mut tat, t0 + SEC), "exactly one interval later");
    }

    #[test]
    fn a_long_pause_refills_only_up_to_the_burst() {
        let gcra = Gcra::new(60, 60 * SEC, 5);
        let mut tat = 0;
        let later = 3_600 * SEC;
        let admitted = (0..20).filter(|_| run(&gcra, &mut tat, later)).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn a_clock_going_backwards_never_admits_more() {
        let gcra = Gcra::new(2, 10 * SEC, 2);
        let now = 10_000 * SEC;
        let mut tat = 0;
        assert!(run(&gcra, &mut tat, now));
        assert!(run(&gcra, &mut tat, now));
        // Back an hour: the bucket stays empty for one interval, not for the hour.
        let earlier = now - 3_600 * SEC;
        assert!(
            matches!(gcra.decide(tat, earlier), GcraOutcome::Limited { retry_after, .. } if retry_after <= 5 * SEC)
        );
        assert!(!run(&gcra, &mut tat, earlier));
        assert!(run(&gcra, &mut tat, earlier + 5 * SEC));
        assert!(!run(&gcra, &mut tat, earlier + 5 * SEC));
    }

    #[test]
    fn undo_gives_back_one_admission() {
        let gcra = Gcra::new(1, SEC, 1);
        let now = 9 * SEC;
        let mut tat = 0;
        assert!(run(&gcra, &mut tat, now));
        tat = gcra.undo(tat, now);
        assert!(run(&gcra, &mut tat, now));
        assert!(Gcra::is_idle(now, now + 1));
        assert!(!Gcra::is_idle(tat, now));
    }
}

//! Tokens and money held for a forwarded request, and their settlement once the real usage is known.
//!
//! Counters are calendar windows (`Period::window`): a record holds the window id and the amount used in
//! it. A reservation adds the estimate; settling swaps the estimate for the actual amount. A request that
//! straddles a window boundary is charged its actual amount in the window it settles in: the old window's
//! hold ended with that window. Fixed windows line up with how budgets are billed; the price is that a
//! token limit can admit up to twice its size across one boundary.

use tollgate_ai::Usage;
use tollgate_core::Ports;

use crate::limiter::RateLimits;
use crate::metrics;
use crate::rule::{Limit, Rule};
use crate::slots::{Record, SlotError, Step};
use crate::window::{nanos_since_epoch, Period, NANOS_PER_SEC};

/// What `check` held for one admitted request. Settle it (`RateLimits::settle`) or release it
/// (`RateLimits::release`) exactly once: both take it by value, and it cannot be cloned. Dropping it
/// unsettled leaves the estimate charged until its window ends.
#[must_use = "settle or release the reservation, or its estimate stays charged until the window ends"]
#[derive(Debug, PartialEq, Eq)]
pub struct Reservation {
    pub(crate) holds: Vec<Hold>,
    pub(crate) consumer: Option<String>,
    pub(crate) model: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    pub rule: String,
    pub owner: u64,
    pub window: u64,
    /// Tokens, or micro-units of currency.
    pub amount: u64,
}

impl Reservation {
    pub(crate) fn new(consumer: Option<&str>, model: Option<&str>) -> Reservation {
        Reservation {
            holds: Vec::new(),
            consumer: consumer.map(str::to_string),
            model: model.map(str::to_string),
        }
    }

    /// The amount held under `rule` (tokens or micro-units), if it holds anything there.
    pub fn held(&self, rule: &str) -> Option<u64> {
        self.holds.iter().find(|h| h.rule == rule).map(|h| h.amount)
    }
}

/// A counter record's (window, used) as seen at `current` window id. A newer stored window means the clock
/// went backwards: keep counting in the newer one rather than granting a fresh window.
pub(crate) fn counter(stored: Option<Record>, current: u64) -> (u64, u64) {
    match stored {
        Some(r) if r.a >= current => (r.a, r.b),
        _ => (current, 0),
    }
}

pub(crate) fn window_id(period: Period, now_ns: u64) -> u64 {
    period.window(now_ns / NANOS_PER_SEC).id
}

impl RateLimits {
    /// Charges the real usage of a request that completed, refunding (or topping up) each estimate.
    /// Returns what the usage cost, in micro-units, when the model is priced.
    pub fn settle(&self, reservation: Reservation, usage: &Usage, ports: Ports<'_>) -> Option<u64> {
        // Nothing held and no model to price (a request limit only): nothing to do, not even a clock read.
        if reservation.holds.is_empty() && reservation.model.is_none() {
            return None;
        }
        let now = nanos_since_epoch(ports.clock.now());
        let price =
            reservation.model.as_deref().and_then(|m| self.prices.lookup(reservation.consumer.as_deref(), m));
        for hold in &reservation.holds {
            // A rule removed by a config reload since `check` has nothing left to settle.
            let Some(rule) = self.rules.iter().find(|r| r.name == hold.rule) else { continue };
            let actual = match rule.limit {
                Limit::Tokens { .. } => usage.total(),
                Limit::Budget { .. } => price.as_ref().map_or(0, |p| p.price.cost(usage)),
                Limit::Requests { .. } | Limit::Global(_) => continue,
            };
            self.swap_hold(rule, hold, actual, now, ports);
        }
        let p = price?;
        let cost = p.price.cost(usage);
        ports.metrics.increment(
            &metrics::cost_metric(reservation.consumer.as_deref(), p.model_label),
            i64::try_from(cost).unwrap_or(i64::MAX),
        );
        Some(cost)
    }

    /// Ends a request that died before completing: charges `used` if the provider reported usage before the
    /// failure, otherwise nothing (the whole estimate is refunded).
    pub fn release(&self, reservation: Reservation, used: Option<&Usage>, ports: Ports<'_>) {
        let _cost = self.settle(reservation, used.unwrap_or(&Usage::default()), ports);
    }

    /// Replaces the held estimate with `actual` in the hold's counter.
    pub(crate) fn swap_hold(&self, rule: &Rule, hold: &Hold, actual: u64, now: u64, ports: Ports<'_>) {
        let (Limit::Tokens { period, .. } | Limit::Budget { period, .. }) = rule.limit else { return };
        let current = window_id(period, now);
        let result = rule.ring.update(
            ports.store,
            hold.owner,
            |r| r.a < current,
            |stored| {
                let (window, used) = match stored {
                    // Still the window the estimate was held in (`>`: the clock has gone back since).
                    Some(r) if r.a == hold.window && hold.window >= current => {
                        (r.a, r.b.saturating_sub(hold.amount).saturating_add(actual))
                    }
                    other => {
                        let (window, used) = counter(other, current);
                        (window, used.saturating_add(actual))
                    }
                };
                Step::Write(Record { owner: 0, a: window, b: used }, ())
            },
        );
        let unit = if matches!(rule.limit, Limit::Tokens { .. }) { "tokens" } else { "cost_micros" };
        match result {
            Ok(()) => {
                let delta = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                ports.metrics.increment(&rule.metric(&format!("{unit}_settled")), delta(actual));
                if hold.amount > actual {
                    ports
                        .metrics
                        .increment(&rule.metric(&format!("{unit}_refunded")), delta(hold.amount - actual));
                }
            }
            // The estimate stays charged until its window ends: over-counting, never under-counting.
            Err(SlotError::Store(_) | SlotError::Contended | SlotError::Full) => {
                ports.metrics.increment(metrics::STORE_ERRORS, 1);
            }
        }
    }
}

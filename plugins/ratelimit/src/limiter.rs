//! `RateLimits::check`: every rule that applies to a request must admit it; a refusal gives back what the
//! rules before it took, so a refused request leaves no trace in any counter.

use tollgate_ai::Usage;
use tollgate_core::{Ports, StoreError};

use crate::decision::{header_edits, header_fields, Decision, QuotaStatus};
use crate::error::RateLimitError;
use crate::gcra::{Gcra, GcraOutcome};
use crate::global::Service;
use crate::metrics;
use crate::prices::{format_micros, PriceTable};
use crate::reservation::{counter, window_id, Hold, Reservation};
use crate::rule::{Limit, RequestFacts, Rule};
use crate::slots::{Record, SlotError, Step};
use crate::window::{ceil_secs, nanos_since_epoch, Period, NANOS_PER_SEC};

/// The compiled `ratelimit` section. Immutable; one per worker, shared state lives in the `SharedStore`.
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub(crate) rules: Vec<Rule>,
    pub(crate) prices: PriceTable,
    currency: String,
    default_max_tokens: u64,
    pub(crate) headers: bool,
    /// The rate limit service global rules ask; present whenever a rule is global.
    pub(crate) service: Option<Service>,
    cost_header: bool,
}

/// Response header with what an answer cost, e.g. `0.000450 USD` (`ratelimit.cost_header`).
pub const COST_HEADER: &str = "x-tollgate-cost";

/// One rule's verdict on a request.
enum RuleOutcome<'r> {
    Admitted { taken: Taken, status: Option<QuotaStatus<'r>> },
    Refused { error: RateLimitError, retry_after: u64, status: Option<QuotaStatus<'r>> },
}

/// What an admitting rule took, to give back if a later rule refuses.
enum Taken {
    Request {
        owner: u64,
    },
    Hold(Hold),
    /// Nothing local (a global rule, which `check` skips).
    None,
}

impl RateLimits {
    pub(crate) fn new(
        rules: Vec<Rule>,
        prices: PriceTable,
        currency: String,
        default_max_tokens: u64,
        headers: bool,
        service: Option<Service>,
    ) -> RateLimits {
        RateLimits { rules, prices, currency, default_max_tokens, headers, service, cost_header: false }
    }

    pub(crate) fn with_cost_header(mut self, on: bool) -> RateLimits {
        self.cost_header = on;
        self
    }

    /// The `x-tollgate-cost` header for a settled cost, when `cost_header` is on: the amount in the
    /// currency's units with six decimals, then the currency (`0.000450 USD`).
    pub fn cost_header(&self, cost_micros: Option<u64>) -> Option<(String, String)> {
        let micros = cost_micros.filter(|_| self.cost_header)?;
        let value = format!("{} {}", format_micros(micros), self.currency);
        Some((COST_HEADER.to_string(), value.trim_end().to_string()))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `prices` lists anything, so costs can be reported even without a budget rule.
    pub fn has_prices(&self) -> bool {
        !self.prices.is_empty()
    }

    /// What `usage` of `model` costs `consumer`, in millionths of the currency; `None` when unpriced.
    pub fn cost_micros(&self, consumer: Option<&str>, model: &str, usage: &Usage) -> Option<u64> {
        self.prices.lookup(consumer, model).map(|found| found.price.cost(usage))
    }

    /// Whether some rule is keyed by the client's IP, so the filter must read the peer address.
    pub fn keys_on_client_ip(&self) -> bool {
        self.rules.iter().any(|rule| rule.key.contains(&crate::rule::KeyPart::ClientIp))
    }

    /// Creates every rule's store slots that do not exist yet. Call from `on_configure`, before traffic
    /// (see `SlotRing::prepare`); existing counters survive a config reload.
    pub fn prepare(&self, ports: Ports<'_>) -> Result<(), StoreError> {
        let local = self.rules.iter().filter(|rule| !matches!(rule.limit, Limit::Global(_)));
        local.into_iter().try_for_each(|rule| rule.ring.prepare(ports.store))
    }

    /// Decides a request before it is forwarded by its local rules, reserving tokens and money for token and
    /// budget rules. Global rules are not consulted here: ask the service first (`global_checks`).
    ///
    /// Store trouble: a failed read or write skips the rule (fail-open; shared data is in-process, so this is
    /// a host fault, not load). Losing the CAS race `MAX_ATTEMPTS` times, or finding no free slot, refuses
    /// the request (fail-closed): both mean a hot or sprayed key, exactly what a limit is for.
    pub fn check(&self, facts: &RequestFacts<'_>, ports: Ports<'_>) -> Decision {
        let now = nanos_since_epoch(ports.clock.now());
        let mut reservation = Reservation::new(facts.consumer, facts.model);
        let mut taken: Vec<(&Rule, Taken)> = Vec::new();
        let mut statuses = Vec::new();
        for rule in &self.rules {
            if matches!(rule.limit, Limit::Global(_)) {
                continue;
            }
            let Some(owner) = rule.identity(facts) else { continue };
            let outcome = match self.judge(rule, owner, facts, now, ports) {
                Ok(outcome) => outcome,
                Err(SlotError::Store(_)) => {
                    ports.metrics.increment(metrics::STORE_ERRORS, 1);
                    continue;
                }
                Err(e) => {
                    let rule_name = rule.name.clone();
                    let error = match e {
                        SlotError::Full => RateLimitError::KeySpaceFull { rule: rule_name },
                        _ => RateLimitError::Contended { rule: rule_name },
                    };
                    RuleOutcome::Refused { error, retry_after: 1, status: None }
                }
            };
            match outcome {
                RuleOutcome::Admitted { taken: t, status } => {
                    ports.metrics.count(&rule.allowed_metric, 1);
                    if let Taken::Hold(hold) = &t {
                        let unit =
                            if matches!(rule.limit, Limit::Tokens { .. }) { "tokens" } else { "cost_micros" };
                        let amount = i64::try_from(hold.amount).unwrap_or(i64::MAX);
                        ports.metrics.increment(&rule.metric(&format!("{unit}_reserved")), amount);
                    }
                    statuses.extend(status.filter(|_| !rule.shadow));
                    taken.push((rule, t));
                }
                RuleOutcome::Refused { .. } if rule.shadow => {
                    ports.metrics.increment(&rule.metric("shadow_limited"), 1);
                }
                RuleOutcome::Refused { error, retry_after, status } => {
                    ports.metrics.increment(&rule.metric("limited"), 1);
                    statuses.extend(status);
                    self.give_back(taken, now, ports);
                    // Waiting does not help a request refused for another reason than a limit (an unpriced model).
                    let retry_after = (error.status() == 429).then_some(retry_after);
                    let reply = error.reply(retry_after, header_fields(&statuses));
                    return Decision::Limit { error, reply };
                }
            }
        }
        for (_, t) in taken {
            if let Taken::Hold(hold) = t {
                reservation.holds.push(hold);
            }
        }
        let headers = if self.headers { header_edits(&statuses) } else { Default::default() };
        Decision::Allow { headers, reservation }
    }

    fn judge<'r>(
        &self,
        rule: &'r Rule,
        owner: u64,
        facts: &RequestFacts<'_>,
        now: u64,
        ports: Ports<'_>,
    ) -> Result<RuleOutcome<'r>, SlotError> {
        match &rule.limit {
            Limit::Requests { gcra, limit, period } => {
                take_request(rule, gcra, *limit, *period, owner, now, ports)
            }
            Limit::Tokens { limit, period } => {
                let wanted =
                    facts.prompt_tokens.saturating_add(facts.max_tokens.unwrap_or(self.default_max_tokens));
                let refuse = |left: u64| RateLimitError::Tokens {
                    rule: rule.name.clone(),
                    wanted,
                    left,
                    limit: *limit,
                    per: period.name(),
                };
                take_hold(rule, *limit, *period, owner, wanted, now, ports, refuse)
            }
            Limit::Budget { limit, period } => {
                let model = facts.model.unwrap_or_default();
                let Some(price) = self.prices.lookup(facts.consumer, model) else {
                    let error =
                        RateLimitError::Unpriced { rule: rule.name.clone(), model: model.to_string() };
                    return Ok(RuleOutcome::Refused { error, retry_after: 0, status: None });
                };
                let estimate = Usage {
                    input_tokens: facts.prompt_tokens,
                    output_tokens: facts.max_tokens.unwrap_or(self.default_max_tokens),
                    ..Usage::default()
                };
                let wanted = price.price.cost(&estimate);
                let money = |micros: u64| {
                    format!("{} {}", format_micros(micros), self.currency).trim_end().to_string()
                };
                let refuse = |left: u64| RateLimitError::Budget {
                    rule: rule.name.clone(),
                    wanted: money(wanted),
                    left: money(left),
                    limit: money(*limit),
                    per: period.name(),
                };
                take_hold(rule, *limit, *period, owner, wanted, now, ports, refuse)
            }
            Limit::Global(_) => Ok(RuleOutcome::Admitted { taken: Taken::None, status: None }),
        }
    }

    /// Undoes what admitting rules took for a request a later rule refused. Best effort: a failure here
    /// leaves the counter slightly high, never low.
    fn give_back(&self, taken: Vec<(&Rule, Taken)>, now: u64, ports: Ports<'_>) {
        for (rule, t) in taken {
            match (t, &rule.limit) {
                (Taken::Request { owner }, Limit::Requests { gcra, .. }) => {
                    let undone = rule.ring.update(
                        ports.store,
                        owner,
                        |_| false,
                        |stored| match stored {
                            Some(r) => Step::Write(Record { a: gcra.undo(r.a, now), ..r }, ()),
                            None => Step::Keep(()),
                        },
                    );
                    if undone.is_err() {
                        ports.metrics.increment(metrics::STORE_ERRORS, 1);
                    }
                }
                (Taken::Hold(hold), _) => self.swap_hold(rule, &hold, 0, now, ports),
                (Taken::Request { .. } | Taken::None, _) => {}
            }
        }
    }
}

fn take_request<'r>(
    rule: &'r Rule,
    gcra: &Gcra,
    limit: u64,
    period: Period,
    owner: u64,
    now: u64,
    ports: Ports<'_>,
) -> Result<RuleOutcome<'r>, SlotError> {
    let status = |remaining: u64, reset: u64| QuotaStatus {
        rule: &rule.name,
        quota: limit,
        window_secs: period.seconds(),
        remaining,
        reset_secs: ceil_secs(reset),
    };
    rule.ring.update(
        ports.store,
        owner,
        |r| Gcra::is_idle(r.a, now),
        // The instant decided on is read after the slot: an instant read before it can predate an admission
        // another worker stored meanwhile, and would report one request fewer remaining than that worker did.
        // (The request's own `now` still judges idleness above: an older instant only reuses slots later.)
        |stored| match gcra.decide(stored.map_or(0, |r| r.a), nanos_since_epoch(ports.clock.now()).max(now)) {
            GcraOutcome::Allowed { tat, remaining, reset } => Step::Write(
                Record { owner: 0, a: tat, b: 0 },
                RuleOutcome::Admitted {
                    taken: Taken::Request { owner },
                    status: Some(status(remaining, reset)),
                },
            ),
            GcraOutcome::Limited { retry_after, reset, repair } => {
                let error = RateLimitError::Requests { rule: rule.name.clone(), limit, per: period.name() };
                let refused = RuleOutcome::Refused {
                    error,
                    retry_after: ceil_secs(retry_after),
                    status: Some(status(0, reset)),
                };
                match repair {
                    Some(tat) => Step::Write(Record { owner: 0, a: tat, b: 0 }, refused),
                    None => Step::Keep(refused),
                }
            }
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn take_hold<'r>(
    rule: &'r Rule,
    limit: u64,
    period: Period,
    owner: u64,
    wanted: u64,
    now: u64,
    ports: Ports<'_>,
    refuse: impl Fn(u64) -> RateLimitError,
) -> Result<RuleOutcome<'r>, SlotError> {
    let current = window_id(period, now);
    let end = period.window(now / NANOS_PER_SEC).end;
    rule.ring.update(
        ports.store,
        owner,
        |r| r.a < current,
        |stored| {
            let (window, used) = counter(stored, current);
            let left = limit.saturating_sub(used);
            if wanted > left {
                let retry_after = end.saturating_sub(now / NANOS_PER_SEC).max(1);
                return Step::Keep(RuleOutcome::Refused { error: refuse(left), retry_after, status: None });
            }
            let hold = Hold { rule: rule.name.clone(), owner, window, amount: wanted };
            Step::Write(
                Record { owner: 0, a: window, b: used + wanted },
                RuleOutcome::Admitted { taken: Taken::Hold(hold), status: None },
            )
        },
    )
}

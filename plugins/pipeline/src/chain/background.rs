//! What the pipeline does outside a request's phases: shared state prepared before traffic, the peer address
//! handed over before a head is decided, a stream's end (releasing what it held, usage reports for the rate
//! limit service), and the root context's background calls (JWKS refreshes, those reports) on its ticks.

use std::time::Duration;

use tollgate_core::{CallOutcome, Callout, Ports, StoreError};
use tollgate_ratelimit::RateLimits;

use tollgate_auth::Auth;

use super::{Pipeline, Stream};
use crate::authentication::JWKS_PURPOSE;
use crate::limits;

/// A call the root context makes on its own schedule (not for any one request), e.g. a JWKS refresh.
/// `purpose` comes back with the answer so the pipeline knows what it was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackgroundCall {
    pub purpose: String,
    pub call: Callout,
}

/// Purpose of a call that reports a global token rule's usage to the rate limit service.
pub const USAGE_REPORT_PURPOSE: &str = "ratelimit-usage";
/// Counter of usage reports the rate limit service did not take (the fleet's token count is low by them).
pub const USAGE_REPORT_ERRORS: &str = "tollgate_ratelimit_usage_report_errors_total";
/// Counter of usage reports the rate limit service took.
pub const USAGE_REPORTS: &str = "tollgate_ratelimit_usage_reports_total";
/// How long a usage report may wait in the filter's outbox.
const USAGE_REPORT_INTERVAL: Duration = Duration::from_millis(100);

impl Pipeline {
    /// Creates the shared state the configuration needs before traffic (the limits' store slots). Call once
    /// per configuration, from `on_configure`, after compiling.
    pub fn prepare(&self, ports: Ports<'_>) -> Result<(), StoreError> {
        self.ratelimit.as_ref().map_or(Ok(()), |limits| limits.prepare(ports))
    }

    /// Whether the filter should hand over the client's address (`Pipeline::set_source_address`).
    pub fn wants_source_address(&self) -> bool {
        self.ratelimit.as_ref().is_some_and(RateLimits::keys_on_client_ip)
            || self.auth.as_ref().is_some_and(Auth::wants_source_address)
    }

    /// The downstream peer address (Envoy's `source.address`), before the request head is decided.
    pub fn set_source_address(&self, stream: &mut Stream, address: &str) {
        stream.limits.set_source_address(address);
        stream.auth.set_source_address(address);
    }

    /// The stream is over, however it ended. A reservation still held means the response never completed:
    /// release it, charging only the usage the provider reported so far. Settled requests hold none.
    /// Returns the calls that report global token rules' usage to the rate limit service: the filter makes
    /// them from its root context, since the stream's own calls die with it.
    pub fn on_stream_done(&self, stream: &mut Stream, ports: Ports<'_>) -> Vec<BackgroundCall> {
        let Some(limits) = &self.ratelimit else { return Vec::new() };
        let used = stream.ai.usage();
        let reports = limits::release(limits, &mut stream.limits, used.as_ref(), ports);
        let report =
            |call| BackgroundCall { purpose: USAGE_REPORT_PURPOSE.to_string(), call: Callout::Grpc(call) };
        reports.into_iter().map(report).collect()
    }

    /// How often the root context should wake for `on_tick`; `None` when no plugin has background work.
    pub fn tick_period(&self) -> Option<Duration> {
        // Often, so a remote JWKS is fetched within a fraction of a second of start-up (requests before that
        // are refused with 503) rather than one refresh interval later. A tick costs one shared-data read per
        // remote provider; fetches stay limited by each provider's own intervals.
        let jwks = self.auth.as_ref().and_then(|auth| auth.jwt().tick_period());
        let jwks = jwks.map(|period| period.min(Duration::from_millis(200)));
        // Usage reports wait in the filter's outbox for the next tick.
        let reports = self.ratelimit.as_ref().filter(|l| l.reports_usage()).map(|_| USAGE_REPORT_INTERVAL);
        match (jwks, reports) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Background work that is due now (run on every worker; plugins coordinate through the shared store
    /// so that only one worker actually fetches).
    pub fn on_tick(&self, ports: Ports<'_>) -> Vec<BackgroundCall> {
        let Some(auth) = &self.auth else { return Vec::new() };
        let fetches = auth.jwt().due_fetches(ports).into_iter();
        fetches
            .map(|f| BackgroundCall {
                purpose: format!("{JWKS_PURPOSE}{}", f.provider),
                call: Callout::Http(f.call),
            })
            .collect()
    }

    /// A background call answered (or failed).
    pub fn on_background_response(&self, purpose: &str, outcome: &CallOutcome, ports: Ports<'_>) {
        if purpose == USAGE_REPORT_PURPOSE {
            let counter = if outcome.ok_body().is_some() { USAGE_REPORTS } else { USAGE_REPORT_ERRORS };
            ports.metrics.increment(counter, 1);
            return;
        }
        if let (Some(auth), Some(provider)) = (&self.auth, purpose.strip_prefix(JWKS_PURPOSE)) {
            // A refused document leaves the previous keys in place; the JWT plugin counts the failure.
            let _ = auth.jwt().on_jwks_response(provider, outcome, ports);
        }
    }
}

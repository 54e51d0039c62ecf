//! `ShouldRateLimit`: every descriptor of a request is matched against the limit table, and all the
//! counters they touch are checked and counted in one store call, so a request that would go over any
//! limit is refused without counting anything.

use std::time::Duration;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use tonic::{Request, Response, Status};

use crate::limits::{Limit, LimitTable};
use crate::store::{CounterSpec, CounterState, CounterStore};

/// A store call slower than this answers UNAVAILABLE, so the client's failure mode applies instead of
/// its own (usually longer) timeout.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct RlsService {
    limits: LimitTable,
    store: CounterStore,
}

impl RlsService {
    pub fn new(limits: LimitTable, store: CounterStore) -> Self {
        Self { limits, store }
    }

    async fn decide(&self, request: RateLimitRequest) -> Result<RateLimitResponse, Status> {
        if request.domain.is_empty() {
            return Err(Status::invalid_argument("rate limit domain must not be empty"));
        }
        if request.descriptors.is_empty() {
            return Err(Status::invalid_argument("rate limit descriptor list must not be empty"));
        }
        // Envoy's own service treats an unset hits_addend as one hit.
        let hits = u64::from(request.hits_addend.max(1));
        let descriptors: Vec<Vec<(String, String)>> = request
            .descriptors
            .iter()
            .map(|descriptor| descriptor.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect())
            .collect();
        let matched = self.limits.counters_for(&request.domain, &descriptors);

        // A counter two descriptors share is checked and counted once.
        let mut specs: Vec<CounterSpec> = Vec::new();
        let mut slots = Vec::with_capacity(matched.len());
        for counter in &matched {
            let slot = specs.iter().position(|spec| spec.key == counter.key).unwrap_or_else(|| {
                specs.push(CounterSpec {
                    key: counter.key.clone(),
                    max: counter.limit.max,
                    window: Duration::from_secs(counter.limit.seconds),
                });
                specs.len() - 1
            });
            slots.push(slot);
        }

        let (admitted, states) = if specs.is_empty() {
            (true, Vec::new())
        } else {
            let outcome = tokio::time::timeout(STORE_TIMEOUT, self.store.check_and_add(&specs, hits))
                .await
                .map_err(|_| Status::unavailable("counter store timed out"))?
                .map_err(|err| Status::unavailable(format!("counter store: {err}")))?;
            (outcome.admitted, outcome.counters)
        };

        let mut statuses =
            vec![DescriptorStatus { code: Code::Ok.into(), ..Default::default() }; descriptors.len()];
        for (counter, slot) in matched.iter().zip(slots) {
            if let (Some(status), Some(state)) = (statuses.get_mut(counter.descriptor), states.get(slot)) {
                merge(status, counter.limit, *state, hits, admitted);
            }
        }
        let overall = if admitted { Code::Ok } else { Code::OverLimit };
        Ok(RateLimitResponse { overall_code: overall.into(), statuses, ..Default::default() })
    }
}

/// Folds one counter into its descriptor's status: over if these hits do not fit in any of its counters,
/// and the reported limit is the one with the least left.
fn merge(status: &mut DescriptorStatus, limit: &Limit, state: CounterState, hits: u64, admitted: bool) {
    let remaining = limit.max.saturating_sub(state.value);
    if !admitted && remaining < hits {
        status.code = Code::OverLimit.into();
    }
    let remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
    if status.current_limit.is_none() || remaining < status.limit_remaining {
        status.current_limit = Some(RateLimit {
            name: limit.rule.clone(),
            requests_per_unit: u32::try_from(limit.max).unwrap_or(u32::MAX),
            unit: unit(limit.seconds).into(),
        });
        status.limit_remaining = remaining;
        status.duration_until_reset = Some(proto_duration(state.resets_in));
    }
}

fn unit(seconds: u64) -> Unit {
    match seconds {
        1 => Unit::Second,
        60 => Unit::Minute,
        3_600 => Unit::Hour,
        86_400 => Unit::Day,
        _ => Unit::Unknown,
    }
}

fn proto_duration(duration: Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}

#[tonic::async_trait]
impl RateLimitService for RlsService {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.decide(request.into_inner()).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;

    fn service() -> RlsService {
        let limits = LimitTable::parse(
            r#"{"limits":[{"domain":"d","rule":"r","max":3,"seconds":60,"by":["consumer"]},
                          {"domain":"d","rule":"all","max":4,"seconds":7}]}"#,
        )
        .unwrap();
        let store = CounterStore::memory();
        RlsService::new(limits, store)
    }

    fn request(hits: u32, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
        RateLimitRequest {
            domain: "d".into(),
            hits_addend: hits,
            descriptors: descriptors
                .iter()
                .map(|entries| RateLimitDescriptor {
                    entries: entries
                        .iter()
                        .map(|(key, value)| Entry { key: key.to_string(), value: value.to_string() })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn counts_until_over_then_refuses_without_counting() {
        let service = service();
        let a: &[(&str, &str)] = &[("rule", "r"), ("consumer", "a")];
        for left in [2, 1, 0] {
            let reply = service.decide(request(0, &[a])).await.unwrap();
            assert_eq!(reply.overall_code, Code::Ok as i32);
            assert_eq!(reply.statuses[0].limit_remaining, left);
            let limit = reply.statuses[0].current_limit.as_ref().unwrap();
            assert_eq!(
                (limit.name.as_str(), limit.requests_per_unit, limit.unit),
                ("r", 3, Unit::Minute as i32)
            );
        }
        let reply = service.decide(request(1, &[a])).await.unwrap();
        assert_eq!(reply.overall_code, Code::OverLimit as i32);
        assert_eq!(reply.statuses[0].code, Code::OverLimit as i32);
    }

    #[tokio::test]
    async fn one_descriptor_over_refuses_the_request_and_counts_nothing() {
        let service = service();
        let all: &[(&str, &str)] = &[("rule", "all")];
        let b: &[(&str, &str)] = &[("rule", "r"), ("consumer", "b")];
        let reply = service.decide(request(3, &[b, all, &[("rule", "none")]])).await.unwrap();
        assert_eq!(reply.overall_code, Code::Ok as i32);
        assert_eq!(reply.statuses.len(), 3);
        assert_eq!(reply.statuses[1].current_limit.as_ref().unwrap().unit, Unit::Unknown as i32);
        assert!(reply.statuses[2].current_limit.is_none());
        let reply = service.decide(request(1, &[b, all])).await.unwrap();
        assert_eq!(reply.overall_code, Code::OverLimit as i32);
        assert_eq!(reply.statuses[0].code, Code::OverLimit as i32);
        assert_eq!(reply.statuses[1].code, Code::Ok as i32);
        // The refusal counted nothing against `all`: one more hit still fits.
        let reply = service.decide(request(1, &[all])).await.unwrap();
        assert_eq!((reply.overall_code, reply.statuses[0].limit_remaining), (Code::Ok as i32, 0));
    }

    #[tokio::test]
    async fn empty_requests_are_invalid() {
        let service = service();
        let mut empty_domain = request(1, &[&[("rule", "r")]]);
        empty_domain.domain.clear();
        assert_eq!(service.decide(empty_domain).await.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(service.decide(request(1, &[])).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}

//! `tollgate-rls` end to end: a real `redis-server`, the real service binary, and a tonic client speaking
//! `envoy.service.ratelimit.v3.RateLimitService`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{rate_limit::Unit, Code};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use serde_json::json;
use tollgate_harness::rls::{RateLimitService, Redis};
use tonic::transport::{Channel, Endpoint};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tollgate-rls"))
}

fn limits(rule: &str, max: u64, seconds: u64) -> serde_json::Value {
    json!({"limits": [{"domain": "tollgate", "rule": rule, "max": max, "seconds": seconds, "by": ["consumer"]}]})
}

async fn client(service: &RateLimitService) -> RateLimitServiceClient<Channel> {
    // A short timeout: a service that hangs on a dead Redis must fail the test, not stall it.
    let channel =
        Endpoint::from_shared(service.url()).unwrap().timeout(Duration::from_secs(5)).connect().await;
    RateLimitServiceClient::new(channel.unwrap())
}

fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries.iter().map(|(k, v)| Entry { key: k.to_string(), value: v.to_string() }).collect(),
        ..Default::default()
    }
}

async fn ask(
    client: &mut RateLimitServiceClient<Channel>,
    hits: u32,
    descriptors: Vec<RateLimitDescriptor>,
) -> Result<RateLimitResponse, tonic::Status> {
    let request = RateLimitRequest { domain: "tollgate".into(), descriptors, hits_addend: hits };
    client.should_rate_limit(request).await.map(tonic::Response::into_inner)
}

async fn consumer(
    client: &mut RateLimitServiceClient<Channel>,
    rule: &str,
    who: &str,
    hits: u32,
) -> RateLimitResponse {
    ask(client, hits, vec![descriptor(&[("rule", rule), ("consumer", who)])]).await.unwrap()
}

fn ok(reply: &RateLimitResponse) -> bool {
    reply.overall_code == Code::Ok as i32
}

#[tokio::test]
async fn counts_per_consumer_until_over_the_limit() {
    let redis = Redis::start().unwrap();
    let service = RateLimitService::start(binary(), &redis.url(), &limits("fleet", 3, 60)).unwrap();
    let mut client = client(&service).await;

    for left in [2, 1, 0] {
        let reply = consumer(&mut client, "fleet", "a", 0).await;
        assert!(ok(&reply), "{reply:?}");
        let status = &reply.statuses[0];
        assert_eq!((status.code, status.limit_remaining), (Code::Ok as i32, left));
        let limit = status.current_limit.as_ref().unwrap();
        assert_eq!(
            (limit.name.as_str(), limit.requests_per_unit, limit.unit),
            ("fleet", 3, Unit::Minute as i32)
        );
    }
    let reply = consumer(&mut client, "fleet", "a", 1).await;
    assert_eq!(reply.overall_code, Code::OverLimit as i32);
    let status = &reply.statuses[0];
    assert_eq!((status.code, status.limit_remaining), (Code::OverLimit as i32, 0));
    let reset = status.duration_until_reset.as_ref().unwrap();
    let reset = Duration::new(reset.seconds as u64, reset.nanos as u32);
    assert!(reset > Duration::ZERO && reset <= Duration::from_secs(60), "{reset:?}");

    let reply = consumer(&mut client, "fleet", "b", 1).await;
    assert!(ok(&reply));
    assert_eq!(reply.statuses[0].limit_remaining, 2);
}

#[tokio::test]
async fn hits_addend_counts_that_many_and_a_refusal_counts_nothing() {
    let redis = Redis::start().unwrap();
    let service = RateLimitService::start(binary(), &redis.url(), &limits("tokens", 25, 3600)).unwrap();
    let mut client = client(&service).await;

    let first = consumer(&mut client, "tokens", "a", 10).await;
    assert!(ok(&first));
    assert_eq!(first.statuses[0].limit_remaining, 15);
    assert_eq!(first.statuses[0].current_limit.as_ref().unwrap().unit, Unit::Hour as i32);
    assert!(ok(&consumer(&mut client, "tokens", "a", 10).await));
    let refused = consumer(&mut client, "tokens", "a", 10).await;
    assert!(!ok(&refused), "30 > 25 must be refused");
    assert_eq!(refused.statuses[0].limit_remaining, 5);
    let fits = consumer(&mut client, "tokens", "a", 5).await;
    assert!(ok(&fits), "the refused 10 must not have been counted: {fits:?}");
    assert_eq!(fits.statuses[0].limit_remaining, 0);
}

#[tokio::test]
async fn two_services_on_one_redis_share_the_counter() {
    let redis = Redis::start().unwrap();
    let one = RateLimitService::start(binary(), &redis.url(), &limits("fleet", 4, 60)).unwrap();
    let two = RateLimitService::start(binary(), &redis.url(), &limits("fleet", 4, 60)).unwrap();
    assert_ne!(one.port(), two.port());
    let (mut one, mut two) = (client(&one).await, client(&two).await);

    for mut client in [one.clone(), two.clone(), one.clone(), two.clone()] {
        assert!(ok(&consumer(&mut client, "fleet", "shared", 1).await));
    }
    assert!(!ok(&consumer(&mut one, "fleet", "shared", 1).await));
    assert!(!ok(&consumer(&mut two, "fleet", "shared", 1).await));
}

#[tokio::test]
async fn descriptors_without_a_limit_pass_and_any_over_refuses_the_request() {
    let redis = Redis::start().unwrap();
    let limits = json!({"limits": [
        {"domain": "tollgate", "rule": "fleet", "max": 1, "seconds": 60, "by": ["consumer"]},
        {"domain": "tollgate", "rule": "model", "max": 10, "seconds": 86400, "by": ["consumer", "model"]},
        {"domain": "elsewhere", "rule": "other", "max": 1, "seconds": 60}
    ]});
    let service = RateLimitService::start(binary(), &redis.url(), &limits).unwrap();
    let mut client = client(&service).await;

    let unmatched = ask(&mut client, 1, vec![descriptor(&[("rule", "other")]), descriptor(&[("x", "y")])]);
    let reply = unmatched.await.unwrap();
    assert!(ok(&reply));
    assert_eq!(reply.statuses.len(), 2);
    assert!(reply.statuses.iter().all(|s| s.code == Code::Ok as i32 && s.current_limit.is_none()));

    let model = || descriptor(&[("rule", "model"), ("consumer", "a"), ("model", "gpt")]);
    let fleet = || descriptor(&[("rule", "fleet"), ("consumer", "a")]);
    let reply = ask(&mut client, 1, vec![model(), fleet()]).await.unwrap();
    assert!(ok(&reply));
    assert_eq!(reply.statuses[0].current_limit.as_ref().unwrap().unit, Unit::Day as i32);
    assert_eq!((reply.statuses[0].limit_remaining, reply.statuses[1].limit_remaining), (9, 0));

    let reply = ask(&mut client, 1, vec![model(), fleet(), descriptor(&[("rule", "none")])]).await.unwrap();
    assert_eq!(reply.overall_code, Code::OverLimit as i32);
    let codes: Vec<i32> = reply.statuses.iter().map(|s| s.code).collect();
    assert_eq!(codes, [Code::Ok as i32, Code::OverLimit as i32, Code::Ok as i32]);
    assert_eq!(reply.statuses[0].limit_remaining, 9, "the refused request counted nothing against `model`");
}

#[tokio::test]
async fn redis_going_away_answers_unavailable_and_the_service_lives_on() {
    let mut redis = Redis::start().unwrap();
    let mut service = RateLimitService::start(binary(), &redis.url(), &limits("fleet", 5, 60)).unwrap();
    let mut client = client(&service).await;
    assert!(ok(&consumer(&mut client, "fleet", "a", 1).await));

    redis.stop();
    for _ in 0..3 {
        let err =
            ask(&mut client, 1, vec![descriptor(&[("rule", "fleet"), ("consumer", "a")])]).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    }
    // A descriptor no limit applies to needs no storage, so it is still answered.
    assert!(ok(&ask(&mut client, 1, vec![descriptor(&[("rule", "none")])]).await.unwrap()));
    assert!(service.is_running(), "stderr: {}", service.stderr());
}

#[test]
fn start_up_errors_exit_2_with_the_reason() {
    let bad = json!({"limits": [{"domain": "tollgate", "rule": "fleet", "max": 1, "seconds": 0}]});
    let err = RateLimitService::start(binary(), "memory", &bad).unwrap_err().to_string();
    assert!(err.contains("exit status: 2") && err.contains("limits[0]: seconds: must be > 0"), "{err}");

    let gone = tempfile::tempdir().unwrap();
    let url = format!("redis+unix://{}", gone.path().join("redis.sock").display());
    let err = RateLimitService::start(binary(), &url, &limits("fleet", 1, 60)).unwrap_err().to_string();
    assert!(err.contains("exit status: 2") && err.contains("redis"), "{err}");
}

#[tokio::test]
async fn memory_counters_need_no_redis() {
    let service = RateLimitService::start(binary(), "memory", &limits("fleet", 1, 60)).unwrap();
    let mut client = client(&service).await;
    assert!(ok(&consumer(&mut client, "fleet", "a", 1).await));
    assert!(!ok(&consumer(&mut client, "fleet", "a", 1).await));
}

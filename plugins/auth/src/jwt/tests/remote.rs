use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{CallOutcome, CasToken, Ports, SharedStore, StoreError};

use super::support::*;
use crate::jwt::{
    JwksError, JwksFetch, JwtProviders, JwtRejection, JwtVerdict, JWKS_FETCHED_TOTAL,
    JWKS_FETCH_FAILURES_TOTAL, JWKS_STORE_PREFIX,
};

const REFRESH: u64 = 600;
const MIN_REFRESH: u64 = 30;
const MAX_STALE: u64 = 3600;

fn worker() -> JwtProviders {
    let mut raw = provider_json(
        &["RS256"],
        json!({"remote": {"cluster": "jwks_idp", "authority": "idp.example", "path": "/.well-known/jwks.json",
                          "timeout_ms": 1500, "refresh_interval_s": REFRESH, "min_refresh_interval_s": MIN_REFRESH,
                          "max_stale_s": MAX_STALE}}),
    );
    // Key-state tests must reach the keys every time, not the verified-token cache.
    raw["token_cache_size"] = json!(0);
    compile(json!([raw])).unwrap()
}

fn served(keys: &[Value]) -> CallOutcome {
    CallOutcome::Response { status: 200, headers: vec![], body: jwks(keys).to_string().into_bytes() }
}

fn token(kid: &str, key: &TestKey) -> String {
    let mut c = claims();
    c["exp"] = json!(NOW + 100_000);
    mint(Algorithm::RS256, Some(kid), &c, &key.signing)
}

fn needs_keys(verdict: JwtVerdict) -> JwksFetch {
    match verdict {
        JwtVerdict::NeedsKeys(fetch) => fetch,
        other => panic!("expected NeedsKeys, got {other:?}"),
    }
}

/// One worker fetches key `a` and stores it.
fn primed(host: &MemoryHost) -> JwtProviders {
    let w = worker();
    needs_keys(verify(&w, &token("a", &RSA), host));
    assert_eq!(w.on_jwks_response("corp", &served(&[RSA.jwk_with_kid("a")]), host.ports()), Ok(1));
    w
}

#[test]
fn the_first_token_asks_for_keys_then_verifies() {
    let host = MemoryHost::default();
    let w = worker();
    let fetch = needs_keys(verify(&w, &token("a", &RSA), &host));
    assert_eq!(fetch.provider, "corp");
    assert_eq!(fetch.call.cluster, "jwks_idp");
    assert_eq!(fetch.call.authority, "idp.example");
    assert_eq!(fetch.call.path, "/.well-known/jwks.json");
    assert_eq!(fetch.call.method, "GET");
    assert_eq!(fetch.call.timeout, Duration::from_millis(1500));
    assert_eq!(w.on_jwks_response("corp", &served(&[RSA.jwk_with_kid("a")]), host.ports()), Ok(1));
    assert_eq!(valid(verify(&w, &token("a", &RSA), &host)).consumer, "alice");
    assert_eq!(host.metric(JWKS_FETCHED_TOTAL), 1);
}

#[test]
fn while_a_fetch_is_in_flight_other_requests_are_refused_not_paused() {
    let host = MemoryHost::default();
    let w = worker();
    needs_keys(verify(&w, &token("a", &RSA), &host));
    let verdict = verify(&w, &token("a", &RSA), &host);
    assert_eq!(verdict, JwtVerdict::Rejected(JwtRejection::KeysUnavailable));
    assert_eq!(JwtRejection::KeysUnavailable.status(), 503);
}

#[test]
fn a_failed_first_fetch_is_retried_after_the_minimum_interval() {
    let host = MemoryHost::default();
    let w = worker();
    needs_keys(verify(&w, &token("a", &RSA), &host));
    let failed = CallOutcome::Failed { reason: "timeout".into() };
    assert_eq!(
        w.on_jwks_response("corp", &failed, host.ports()),
        Err(JwksError::CallFailed("timeout".into()))
    );
    assert_eq!(verify(&w, &token("a", &RSA), &host), JwtVerdict::Rejected(JwtRejection::KeysUnavailable));
    assert!(w.due_fetches(host.ports()).is_empty());
    host.advance(Duration::from_secs(MIN_REFRESH));
    needs_keys(verify(&w, &token("a", &RSA), &host));
    assert_eq!(host.metric(JWKS_FETCH_FAILURES_TOTAL), 1);
}

#[test]
fn unknown_kids_cause_one_fetch_not_a_storm() {
    let host = MemoryHost::default();
    let w = primed(&host);
    host.advance(Duration::from_secs(MIN_REFRESH));
    let verdicts: Vec<JwtVerdict> =
        (0..100).map(|i| verify(&w, &token(&format!("new-{i}"), &RSA_OTHER), &host)).collect();
    let fetches = verdicts.iter().filter(|v| matches!(v, JwtVerdict::NeedsKeys(_))).count();
    let unknown = verdicts.iter().filter(|v| **v == JwtVerdict::Rejected(JwtRejection::UnknownKey)).count();
    assert_eq!((fetches, unknown), (1, 99));

    // The issuer rotated in key `b`: once stored, `b` verifies and `a` still does.
    let rotated = served(&[RSA.jwk_with_kid("a"), RSA_OTHER.jwk_with_kid("b")]);
    assert_eq!(w.on_jwks_response("corp", &rotated, host.ports()), Ok(2));
    valid(verify(&w, &token("b", &RSA_OTHER), &host));
    valid(verify(&w, &token("a", &RSA), &host));
    // Still unknown after the refresh: refused, no second fetch.
    let again = verify(&w, &token("new-0", &RSA_OTHER), &host);
    assert_eq!(again, JwtVerdict::Rejected(JwtRejection::UnknownKey));
}

#[test]
fn an_unknown_kid_right_after_a_fetch_waits_for_the_minimum_interval() {
    let host = MemoryHost::default();
    let w = primed(&host);
    host.advance(Duration::from_secs(MIN_REFRESH - 1));
    assert_eq!(verify(&w, &token("b", &RSA_OTHER), &host), JwtVerdict::Rejected(JwtRejection::UnknownKey));
    host.advance(Duration::from_secs(1));
    needs_keys(verify(&w, &token("b", &RSA_OTHER), &host));
}

#[test]
fn the_timer_fetches_when_due_and_only_once() {
    let host = MemoryHost::default();
    let w = worker();
    let first = w.due_fetches(host.ports());
    assert_eq!(first.len(), 1, "never fetched: due at once");
    assert!(w.due_fetches(host.ports()).is_empty(), "claimed: not again within the minimum interval");
    assert_eq!(w.on_jwks_response("corp", &served(&[RSA.jwk_with_kid("a")]), host.ports()), Ok(1));
    host.advance(Duration::from_secs(REFRESH - 1));
    assert!(w.due_fetches(host.ports()).is_empty(), "fresh");
    host.advance(Duration::from_secs(1));
    assert_eq!(w.due_fetches(host.ports()).len(), 1, "refresh due");
    assert!(w.due_fetches(host.ports()).is_empty());
}

#[test]
fn stale_keys_are_served_after_failed_refreshes_until_max_stale() {
    let host = MemoryHost::default();
    let w = primed(&host);
    host.advance(Duration::from_secs(REFRESH));
    assert_eq!(w.due_fetches(host.ports()).len(), 1);
    let broken = CallOutcome::Response { status: 503, headers: vec![], body: b"busy".to_vec() };
    assert_eq!(w.on_jwks_response("corp", &broken, host.ports()), Err(JwksError::Status(503)));
    valid(verify(&w, &token("a", &RSA), &host));

    host.advance(Duration::from_secs(MIN_REFRESH));
    assert_eq!(w.due_fetches(host.ports()).len(), 1, "failed refreshes are retried each minimum interval");
    host.advance(Duration::from_secs(MAX_STALE - MIN_REFRESH - 1));
    valid(verify(&w, &token("a", &RSA), &host));

    host.advance(Duration::from_secs(1));
    needs_keys(verify(&w, &token("a", &RSA), &host));
    assert_eq!(verify(&w, &token("a", &RSA), &host), JwtVerdict::Rejected(JwtRejection::KeysUnavailable));
    assert_eq!(w.on_jwks_response("corp", &served(&[RSA.jwk_with_kid("a")]), host.ports()), Ok(1));
    valid(verify(&w, &token("a", &RSA), &host));
}

#[test]
fn two_workers_share_one_copy_and_one_fetch() {
    let host = MemoryHost::default();
    let (w1, w2) = (worker(), worker());
    needs_keys(verify(&w1, &token("a", &RSA), &host));
    assert_eq!(verify(&w2, &token("a", &RSA), &host), JwtVerdict::Rejected(JwtRejection::KeysUnavailable));
    assert!(w2.due_fetches(host.ports()).is_empty());
    w1.on_jwks_response("corp", &served(&[RSA.jwk_with_kid("a")]), host.ports()).unwrap();
    valid(verify(&w2, &token("a", &RSA), &host));

    host.advance(Duration::from_secs(REFRESH));
    let claimed = w1.due_fetches(host.ports()).len() + w2.due_fetches(host.ports()).len();
    assert_eq!(claimed, 1);
    w2.on_jwks_response("corp", &served(&[RSA_OTHER.jwk_with_kid("b")]), host.ports()).unwrap();
    valid(verify(&w1, &token("b", &RSA_OTHER), &host));
    assert_eq!(verify(&w1, &token("a", &RSA), &host), JwtVerdict::Rejected(JwtRejection::UnknownKey));
}

#[test]
fn unusable_documents_keep_the_previous_copy() {
    let host = MemoryHost::default();
    let w = primed(&host);
    let body = |b: &[u8]| CallOutcome::Response { status: 200, headers: vec![], body: b.to_vec() };
    let oct = json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"});
    let cases = [
        (body(b"<html>"), JwksError::NotJson),
        (body(b"{\"keys\": 5}"), JwksError::Invalid("a JWKS is an object with a \"keys\" array".into())),
        (served(&[]), JwksError::NoUsableKeys),
        (served(&[oct]), JwksError::NoUsableKeys),
        (served(&[P256.jwk_with_kid("ec")]), JwksError::NoUsableKeys),
        (body(&vec![b' '; 300 * 1024]), JwksError::TooLarge),
        (CallOutcome::Response { status: 404, headers: vec![], body: vec![] }, JwksError::Status(404)),
    ];
    let failures = cases.len() as i64;
    for (outcome, expected) in cases {
        assert_eq!(w.on_jwks_response("corp", &outcome, host.ports()), Err(expected));
        valid(verify(&w, &token("a", &RSA), &host));
    }
    assert_eq!(host.metric(JWKS_FETCH_FAILURES_TOTAL), failures);
}

#[test]
fn broken_entries_in_a_remote_jwks_are_skipped() {
    let host = MemoryHost::default();
    let w = worker();
    let broken = json!({"kty": "RSA", "kid": "bad", "n": "AQAB", "e": "AQAB"});
    let odd_kid = RSA_OTHER.jwk_with_kid("../b");
    assert_eq!(
        w.on_jwks_response("corp", &served(&[broken, odd_kid, RSA.jwk_with_kid("a")]), host.ports()),
        Ok(1)
    );
    valid(verify(&w, &token("a", &RSA), &host));
}

#[test]
fn answers_for_providers_without_a_remote_jwks_are_refused() {
    let host = MemoryHost::default();
    let p = providers(&["RS256"], json!({"pem": RSA.pem}));
    let outcome = served(&[RSA.jwk_with_kid("a")]);
    assert_eq!(p.on_jwks_response("corp", &outcome, host.ports()), Err(JwksError::NotRemote("corp".into())));
    assert_eq!(p.on_jwks_response("nope", &outcome, host.ports()), Err(JwksError::NotRemote("nope".into())));
    assert!(p.due_fetches(host.ports()).is_empty());
    assert_eq!(p.tick_period(), None);
}

#[test]
fn the_shared_copy_lives_under_a_versioned_key() {
    let host = MemoryHost::default();
    let w = primed(&host);
    let key = w.get("corp").unwrap().remote().unwrap().store_key().to_string();
    assert!(key.starts_with(&format!("{JWKS_STORE_PREFIX}/corp/")), "{key}");
    assert!(JWKS_STORE_PREFIX.starts_with(tollgate_core::STORE_PREFIX));
    let (stored, _) = host.get(&key).unwrap().unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["fetched_at"], NOW);
    assert_eq!(stored["jwks"]["keys"][0]["kid"], "a");
}

/// A store that is down: every read and write fails.
struct DownStore;

impl SharedStore for DownStore {
    fn get(&self, _: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    fn set(&self, _: &str, _: &[u8], _: Option<CasToken>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[test]
fn a_store_outage_keeps_keys_this_worker_already_parsed() {
    let host = MemoryHost::default();
    let w = primed(&host);
    valid(verify(&w, &token("a", &RSA), &host));
    let down = Ports { clock: &host, store: &DownStore, metrics: &host };
    assert!(matches!(w.verify("corp", &token("a", &RSA), down), Some(JwtVerdict::Valid(_))));
    let cold = worker();
    assert_eq!(
        cold.verify("corp", &token("a", &RSA), down),
        Some(JwtVerdict::Rejected(JwtRejection::KeysUnavailable))
    );
    assert!(cold.due_fetches(down).is_empty());
    let stored = cold.on_jwks_response("corp", &served(&[RSA.jwk_with_kid("a")]), down);
    assert!(matches!(stored, Err(JwksError::Store(_))));
}

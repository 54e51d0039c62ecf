use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::CallOutcome;

use super::support::*;
use crate::jwt::{JwtProviders, JwtRejection, JwtVerdict, JWT_CACHE_HITS_TOTAL};

fn rsa_provider(extra: Value) -> JwtProviders {
    let mut raw = provider_json(&["RS256"], json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])}));
    for (k, v) in extra.as_object().unwrap() {
        raw[k] = v.clone();
    }
    compile(json!([raw])).unwrap()
}

fn token_for(sub: &str) -> String {
    let mut c = claims();
    c["sub"] = json!(sub);
    mint(Algorithm::RS256, Some("k1"), &c, &RSA.signing)
}

fn cached(p: &JwtProviders) -> usize {
    p.get("corp").unwrap().cached_tokens()
}

#[test]
fn a_repeated_token_is_answered_from_the_cache() {
    let host = MemoryHost::default();
    let p = rsa_provider(json!({}));
    let token = token_for("alice");
    let first = valid(verify(&p, &token, &host));
    let second = valid(verify(&p, &token, &host));
    assert_eq!(first, second);
    assert_eq!(host.metric(JWT_CACHE_HITS_TOTAL), 1);
    assert_eq!(cached(&p), 1);
}

#[test]
fn a_cache_hit_skips_the_signature_check() {
    let host = MemoryHost::default();
    let mut raw = provider_json(
        &["RS256"],
        json!({"remote": {"cluster": "c", "authority": "idp", "path": "/jwks", "min_refresh_interval_s": 5}}),
    );
    raw["token_cache_size"] = json!(16);
    let p = compile(json!([raw])).unwrap();
    let keys = |k: &[Value]| CallOutcome::Response {
        status: 200,
        headers: vec![],
        body: jwks(k).to_string().into_bytes(),
    };
    p.on_jwks_response("corp", &keys(&[RSA.jwk_with_kid("k1")]), host.ports()).unwrap();
    let token = token_for("alice");
    valid(verify(&p, &token, &host));
    // The issuer drops k1: the cached token stays valid until its exp, a fresh one with k1 does not verify.
    p.on_jwks_response("corp", &keys(&[RSA_OTHER.jwk_with_kid("k2")]), host.ports()).unwrap();
    valid(verify(&p, &token, &host));
    assert_eq!(host.metric(JWT_CACHE_HITS_TOTAL), 1);
    assert!(matches!(verify(&p, &token_for("bob"), &host), JwtVerdict::NeedsKeys(_)));
}

#[test]
fn cached_tokens_expire_at_exp_and_leeway_still_applies_after() {
    let host = MemoryHost::default();
    let p = rsa_provider(json!({}));
    let token = token_for("alice");
    valid(verify(&p, &token, &host));
    host.advance(Duration::from_secs(600));
    valid(verify(&p, &token, &host));
    assert_eq!(host.metric(JWT_CACHE_HITS_TOTAL), 0, "the entry died at exp; leeway came from a full check");
    assert_eq!(cached(&p), 0);
    host.advance(Duration::from_secs(60));
    assert_eq!(verify(&p, &token, &host), JwtVerdict::Rejected(JwtRejection::Expired));
}

#[test]
fn the_cache_is_bounded_by_token_cache_size() {
    let host = MemoryHost::default();
    let p = rsa_provider(json!({"token_cache_size": 2}));
    for sub in ["a", "b", "c", "d", "e"] {
        valid(verify(&p, &token_for(sub), &host));
    }
    assert_eq!(cached(&p), 2);
    valid(verify(&p, &token_for("e"), &host));
    assert_eq!(host.metric(JWT_CACHE_HITS_TOTAL), 1);
    valid(verify(&p, &token_for("a"), &host));
    assert_eq!(host.metric(JWT_CACHE_HITS_TOTAL), 1, "the oldest entry was evicted");
}

#[test]
fn a_zero_size_turns_the_cache_off() {
    let host = MemoryHost::default();
    let p = rsa_provider(json!({"token_cache_size": 0}));
    let token = token_for("alice");
    valid(verify(&p, &token, &host));
    valid(verify(&p, &token, &host));
    assert_eq!(host.metric(JWT_CACHE_HITS_TOTAL), 0);
}

#[test]
fn rejections_are_never_cached() {
    let host = MemoryHost::default();
    let p = rsa_provider(json!({}));
    let forged = mint(Algorithm::RS256, Some("k1"), &claims(), &RSA_OTHER.signing);
    for _ in 0..2 {
        assert_eq!(verify(&p, &forged, &host), JwtVerdict::Rejected(JwtRejection::BadSignature));
    }
    assert_eq!(cached(&p), 0);
}

#[test]
fn each_provider_has_its_own_cache() {
    let host = MemoryHost::default();
    let keys = json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])});
    let mut other = provider_json(&["RS256"], keys.clone());
    other["name"] = json!("other");
    other["audiences"] = json!(["elsewhere"]);
    let p = compile(json!([provider_json(&["RS256"], keys), other])).unwrap();
    let token = token_for("alice");
    valid(p.verify("corp", &token, host.ports()).unwrap());
    let verdict = p.verify("other", &token, host.ports());
    assert_eq!(verdict, Some(JwtVerdict::Rejected(JwtRejection::WrongAudience)));
}

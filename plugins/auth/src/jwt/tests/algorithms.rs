use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tollgate_core::testing::MemoryHost;

use super::support::*;
use crate::jwt::{JwtRejection, JwtVerdict};

fn assert_round_trip(alg: Algorithm, key: &TestKey) {
    let name = format!("{alg:?}");
    let host = MemoryHost::default();
    let by_jwks = providers(&[&name], json!({"jwks": jwks(&[key.jwk_with_kid("k1")])}));
    let token = mint(alg, Some("k1"), &claims(), &key.signing);
    let verified = valid(verify(&by_jwks, &token, &host));
    assert_eq!(verified.consumer, "alice", "{name}");
    assert_eq!(verified.provider, "corp");
    assert_eq!(verified.headers, [("x-user-email".to_string(), "alice@example.com".to_string())]);
    assert_eq!(verified.expires_at, SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 600));

    let by_pem = providers(&[&name], json!({"pem": key.pem}));
    let unkeyed = mint(alg, None, &claims(), &key.signing);
    valid(verify(&by_pem, &unkeyed, &host));
}

#[test]
fn rsa_pkcs1_algorithms_verify() {
    for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
        assert_round_trip(alg, &RSA);
    }
}

#[test]
fn rsa_pss_algorithms_verify() {
    for alg in [Algorithm::PS256, Algorithm::PS384, Algorithm::PS512] {
        assert_round_trip(alg, &RSA);
    }
}

#[test]
fn ecdsa_algorithms_verify_on_their_own_curves() {
    assert_round_trip(Algorithm::ES256, &P256);
    assert_round_trip(Algorithm::ES384, &P384);
}

#[test]
fn eddsa_verifies() {
    assert_round_trip(Algorithm::EdDSA, &ED25519);
}

#[test]
fn hmac_algorithms_verify_with_base64_and_utf8_secrets() {
    let host = MemoryHost::default();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, SECRET);
    let utf8 = std::str::from_utf8(SECRET).unwrap();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let name = format!("{alg:?}");
        let token = mint(alg, None, &claims(), &EncodingKey::from_secret(SECRET));
        let encoded = providers(&[&name], json!({"secret": b64}));
        valid(verify(&encoded, &token, &host));
        let plain = providers(&[&name], json!({"secret": utf8, "secret_encoding": "utf8"}));
        valid(verify(&plain, &token, &host));
    }
}

#[test]
fn inline_jwks_oct_keys_verify_hmac() {
    let host = MemoryHost::default();
    let oct = json!({"kty": "oct", "kid": "s1", "k": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, SECRET)});
    let p = providers(&["HS256"], json!({"jwks": jwks(&[oct])}));
    valid(verify(
        &p,
        &mint(Algorithm::HS256, Some("s1"), &claims(), &EncodingKey::from_secret(SECRET)),
        &host,
    ));
}

#[test]
fn one_provider_may_allow_several_public_key_algorithms() {
    let host = MemoryHost::default();
    let set = jwks(&[RSA.jwk_with_kid("rsa"), P256.jwk_with_kid("ec"), ED25519.jwk_with_kid("ed")]);
    let p = providers(&["RS256", "ES256", "EdDSA"], json!({"jwks": set}));
    valid(verify(&p, &mint(Algorithm::RS256, Some("rsa"), &claims(), &RSA.signing), &host));
    valid(verify(&p, &mint(Algorithm::ES256, Some("ec"), &claims(), &P256.signing), &host));
    valid(verify(&p, &mint(Algorithm::EdDSA, Some("ed"), &claims(), &ED25519.signing), &host));
}

#[test]
fn the_kid_picks_the_key() {
    let host = MemoryHost::default();
    let p =
        providers(&["RS256"], json!({"jwks": jwks(&[RSA.jwk_with_kid("a"), RSA_OTHER.jwk_with_kid("b")])}));
    valid(verify(&p, &mint(Algorithm::RS256, Some("b"), &claims(), &RSA_OTHER.signing), &host));
    valid(verify(&p, &mint(Algorithm::RS256, Some("a"), &claims(), &RSA.signing), &host));
    let mislabelled = mint(Algorithm::RS256, Some("a"), &claims(), &RSA_OTHER.signing);
    assert_eq!(verify(&p, &mislabelled, &host), JwtVerdict::Rejected(JwtRejection::BadSignature));
    let unknown = mint(Algorithm::RS256, Some("zzz"), &claims(), &RSA.signing);
    assert_eq!(verify(&p, &unknown, &host), JwtVerdict::Rejected(JwtRejection::UnknownKey));
}

#[test]
fn without_a_kid_every_key_of_the_right_type_is_tried() {
    let host = MemoryHost::default();
    let set = jwks(&[P256.jwk_with_kid("ec"), RSA.jwk_with_kid("a"), RSA_OTHER.jwk_with_kid("b")]);
    let p = providers(&["RS256", "ES256"], json!({"jwks": set}));
    valid(verify(&p, &mint(Algorithm::RS256, None, &claims(), &RSA_OTHER.signing), &host));
    valid(verify(&p, &mint(Algorithm::ES256, None, &claims(), &P256.signing), &host));
}

#[test]
fn a_key_without_kid_serves_tokens_that_name_one() {
    let host = MemoryHost::default();
    let p = providers(&["ES384"], json!({"pem": P384.pem}));
    valid(verify(&p, &mint(Algorithm::ES384, Some("whatever"), &claims(), &P384.signing), &host));
}

#[test]
fn a_jwk_pinned_to_one_algorithm_refuses_the_others() {
    let host = MemoryHost::default();
    let mut pinned = RSA.jwk_with_kid("a");
    pinned["alg"] = json!("PS256");
    let p = providers(&["RS256", "PS256"], json!({"jwks": jwks(&[pinned, RSA_OTHER.jwk_with_kid("b")])}));
    valid(verify(&p, &mint(Algorithm::PS256, Some("a"), &claims(), &RSA.signing), &host));
    let other_alg = mint(Algorithm::RS256, Some("a"), &claims(), &RSA.signing);
    assert_eq!(verify(&p, &other_alg, &host), JwtVerdict::Rejected(JwtRejection::UnknownKey));
}

#[test]
fn encryption_keys_in_a_jwks_are_never_used_for_signatures() {
    let host = MemoryHost::default();
    let mut enc = RSA.jwk_with_kid("enc");
    enc["use"] = json!("enc");
    let p = providers(&["RS256"], json!({"jwks": jwks(&[enc, RSA_OTHER.jwk_with_kid("sig")])}));
    let token = mint(Algorithm::RS256, Some("enc"), &claims(), &RSA.signing);
    assert_eq!(verify(&p, &token, &host), JwtVerdict::Rejected(JwtRejection::UnknownKey));
}

#[test]
fn a_p384_key_does_not_verify_es256() {
    let host = MemoryHost::default();
    let p = providers(
        &["ES256", "ES384"],
        json!({"jwks": jwks(&[P256.jwk_with_kid("a"), P384.jwk_with_kid("b")])}),
    );
    // Signed with P-384 but labelled ES256 by a confused (or hostile) issuer.
    let token = mint(Algorithm::ES384, Some("b"), &claims(), &P384.signing);
    let relabelled = relabel(&token, "ES256");
    assert_eq!(verify(&p, &relabelled, &host), JwtVerdict::Rejected(JwtRejection::UnknownKey));
}

/// Rewrites a token's header `alg`, keeping its claims and signature.
pub fn relabel(token: &str, alg: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut parts = token.split('.');
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let mut header = header;
    header["alg"] = json!(alg);
    let rest: Vec<_> = parts.collect();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), rest.join("."))
}

#[test]
fn pkcs1_rsa_pem_and_certificate_free_spki_both_load() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{DecodePublicKey, LineEnding};
    let host = MemoryHost::default();
    let public = rsa::RsaPublicKey::from_public_key_pem(&RSA.pem).unwrap();
    let pkcs1 = public.to_pkcs1_pem(LineEnding::LF).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    let p = providers(&["RS512"], json!({"pem": pkcs1}));
    valid(verify(&p, &mint(Algorithm::RS512, None, &claims(), &RSA.signing), &host));
}

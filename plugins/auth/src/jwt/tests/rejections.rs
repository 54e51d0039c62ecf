use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;

use super::algorithms::relabel;
use super::support::*;
use crate::jwt::{JwtProviders, JwtRejection, JwtVerdict, JWT_REJECTED_TOTAL, JWT_VALID_TOTAL};

fn rsa_provider() -> JwtProviders {
    providers(&["RS256"], json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])}))
}

fn rejected(providers: &JwtProviders, token: &str, host: &MemoryHost) -> JwtRejection {
    match verify(providers, token, host) {
        JwtVerdict::Rejected(rejection) => {
            let quoted = token.len() >= 8 && rejection.to_string().contains(token);
            assert!(!quoted, "a message quoted the token");
            rejection
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn with_claims(patch: Value) -> Value {
    let mut c = claims();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn rs256(claims: &Value) -> String {
    mint(Algorithm::RS256, Some("k1"), claims, &RSA.signing)
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let host = MemoryHost::default();
    let by_pem = providers(&["RS256"], json!({"pem": RSA.pem}));
    // The classic confusion attack: the public key's PEM bytes used as an HMAC secret.
    let forged = mint(Algorithm::HS256, None, &claims(), &EncodingKey::from_secret(RSA.pem.as_bytes()));
    assert_eq!(rejected(&by_pem, &forged, &host), JwtRejection::AlgorithmNotAllowed("HS256".into()));
    let by_jwks = rsa_provider();
    let forged = mint(Algorithm::HS256, Some("k1"), &claims(), &EncodingKey::from_secret(RSA.pem.as_bytes()));
    assert_eq!(rejected(&by_jwks, &forged, &host), JwtRejection::AlgorithmNotAllowed("HS256".into()));
}

#[test]
fn rsa_keys_never_accept_hmac_algorithms() {
    let parsed = crate::jwt::keys::parse_pem(&RSA.pem).unwrap();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512, Algorithm::ES256, Algorithm::EdDSA] {
        assert!(!parsed.accepts(alg, None), "{alg:?}");
    }
    assert!(parsed.accepts(Algorithm::PS512, Some("any")));
}

#[test]
fn alg_none_is_refused_with_or_without_a_signature() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(rejected(&p, &unsigned, &host), JwtRejection::AlgorithmNotAllowed("none".into()));
    let relabelled = relabel(&rs256(&claims()), "none");
    assert_eq!(rejected(&p, &relabelled, &host), JwtRejection::AlgorithmNotAllowed("none".into()));
}

#[test]
fn algorithms_outside_the_list_are_refused_before_any_key_lookup() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let ps = mint(Algorithm::PS256, Some("k1"), &claims(), &RSA.signing);
    assert_eq!(rejected(&p, &ps, &host), JwtRejection::AlgorithmNotAllowed("PS256".into()));
    let weird = forge(&json!({"alg": "RS1"}), &claims());
    assert_eq!(rejected(&p, &weird, &host), JwtRejection::AlgorithmNotAllowed("unsupported".into()));
}

#[test]
fn huge_tokens_are_refused_by_size_alone() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let huge = "a".repeat(8193);
    assert_eq!(rejected(&p, &huge, &host), JwtRejection::TooLarge { max: 8192 });
    let padded = rs256(&with_claims(json!({"pad": "x".repeat(9000)})));
    assert_eq!(rejected(&p, &padded, &host), JwtRejection::TooLarge { max: 8192 });

    let mut small = provider_json(&["RS256"], json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])}));
    small["max_token_bytes"] = json!(512);
    let small = compile(json!([small])).unwrap();
    let ok = rs256(&claims());
    assert!(ok.len() > 512);
    assert_eq!(rejected(&small, &ok, &host), JwtRejection::TooLarge { max: 512 });
}

#[test]
fn shape_and_encoding_errors_are_malformed() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let good = rs256(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "Bearer".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[1], parts[2]),
        format!("{}%.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}*.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode("not json"), parts[2]),
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode("[\"array\"]"), parts[2]),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("{"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]), parts[2]),
        "\u{1F600}.\u{1F600}.\u{1F600}".into(),
    ];
    for token in cases {
        assert!(matches!(rejected(&p, &token, &host), JwtRejection::Malformed(_)), "{token:?}");
    }
}

#[test]
fn kids_with_path_characters_are_malformed() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    for kid in ["../../../etc/passwd", "keys/k1", "k1\\..", "k1%2F", "k 1", "k1\u{0}"] {
        let token = mint(Algorithm::RS256, Some(kid), &claims(), &RSA.signing);
        assert!(matches!(rejected(&p, &token, &host), JwtRejection::Malformed(_)), "{kid:?}");
    }
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let good = rs256(&claims());
    let evil = rs256(&with_claims(json!({"sub": "mallory"})));
    let spliced: Vec<&str> = good.split('.').collect();
    let evil_claims = evil.split('.').nth(1).unwrap();
    let token = format!("{}.{}.{}", spliced[0], evil_claims, spliced[2]);
    assert_eq!(rejected(&p, &token, &host), JwtRejection::BadSignature);
    let other_key = mint(Algorithm::RS256, Some("k1"), &claims(), &RSA_OTHER.signing);
    assert_eq!(rejected(&p, &other_key, &host), JwtRejection::BadSignature);
}

#[test]
fn expiry_uses_the_host_clock_with_leeway() {
    let p = rsa_provider();
    let token = rs256(&claims());
    let host = MemoryHost::default();
    host.advance(Duration::from_secs(659));
    valid(verify(&p, &token, &host));
    host.advance(Duration::from_secs(1));
    let rejection = rejected(&p, &token, &host);
    assert_eq!(rejection, JwtRejection::Expired);
    assert!(rejection.is_expired());
    assert_eq!(rejection.code(), "jwt_expired");
}

#[test]
fn not_before_uses_the_host_clock_with_leeway() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    valid(verify(&p, &rs256(&with_claims(json!({"nbf": NOW + 60}))), &host));
    let early = rs256(&with_claims(json!({"nbf": NOW + 61})));
    assert_eq!(rejected(&p, &early, &host), JwtRejection::NotYetValid);
    host.advance(Duration::from_secs(1));
    valid(verify(&p, &early, &host));
}

#[test]
fn zero_leeway_is_exact() {
    let host = MemoryHost::default();
    let mut strict = provider_json(&["RS256"], json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])}));
    strict["leeway_s"] = json!(0);
    let p = compile(json!([strict])).unwrap();
    assert_eq!(rejected(&p, &rs256(&with_claims(json!({"exp": NOW}))), &host), JwtRejection::Expired);
    valid(verify(&p, &rs256(&with_claims(json!({"exp": NOW + 1}))), &host));
    assert_eq!(rejected(&p, &rs256(&with_claims(json!({"nbf": NOW + 1}))), &host), JwtRejection::NotYetValid);
}

#[test]
fn issuer_audience_and_claims_are_checked_after_the_signature() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let cases = [
        (json!({"iss": "https://evil.example"}), JwtRejection::WrongIssuer),
        (json!({"iss": null}), JwtRejection::WrongIssuer),
        (json!({"aud": "someone-else"}), JwtRejection::WrongAudience),
        (json!({"aud": null}), JwtRejection::WrongAudience),
        (json!({"sub": null}), JwtRejection::MissingClaim("sub".into())),
        (json!({"exp": null}), JwtRejection::MissingClaim("exp".into())),
        (json!({"sub": 42}), JwtRejection::BadConsumerClaim),
        (json!({"sub": {"id": "alice"}}), JwtRejection::BadConsumerClaim),
    ];
    for (patch, expected) in cases {
        assert_eq!(rejected(&p, &rs256(&with_claims(patch.clone())), &host), expected, "{patch}");
    }
    valid(verify(&p, &rs256(&with_claims(json!({"aud": ["x", AUDIENCE]}))), &host));
}

#[test]
fn a_custom_consumer_claim_is_used() {
    let host = MemoryHost::default();
    let mut raw = provider_json(&["RS256"], json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])}));
    raw["consumer_claim"] = json!("client_id");
    let p = compile(json!([raw])).unwrap();
    let token = rs256(&with_claims(json!({"client_id": "billing-svc"})));
    assert_eq!(valid(verify(&p, &token, &host)).consumer, "billing-svc");
    assert_eq!(rejected(&p, &rs256(&claims()), &host), JwtRejection::MissingClaim("client_id".into()));
}

#[test]
fn an_unknown_provider_verifies_nothing() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    assert_eq!(p.verify("nope", &rs256(&claims()), host.ports()), None);
}

#[test]
fn verdicts_are_counted() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    valid(verify(&p, &rs256(&claims()), &host));
    rejected(&p, "junk", &host);
    rejected(&p, "a.b", &host);
    assert_eq!(host.metric(JWT_VALID_TOTAL), 1);
    assert_eq!(host.metric(JWT_REJECTED_TOTAL), 2);
}

#[test]
fn no_single_character_mutation_panics_or_passes() {
    let host = MemoryHost::default();
    let p = rsa_provider();
    let good = rs256(&claims());
    valid(verify(&p, &good, &host));
    for i in 0..good.len() {
        for replacement in ['.', '=', 'A', '_', '%', '\u{0}', 'é'] {
            let mut mutated = good.clone();
            let original = mutated[i..].chars().next().unwrap();
            if original == replacement {
                continue;
            }
            mutated.replace_range(i..i + 1, &replacement.to_string());
            assert!(
                !matches!(verify(&p, &mutated, &host), JwtVerdict::Valid(_)),
                "position {i} -> {replacement:?}"
            );
        }
        let truncated = &good[..i];
        assert!(!matches!(verify(&p, truncated, &host), JwtVerdict::Valid(_)), "truncated at {i}");
    }
}

use serde_json::{json, Value};

use super::support::*;

fn remote() -> Value {
    json!({"remote": {"cluster": "jwks_idp", "authority": "idp.example", "path": "/.well-known/jwks.json"}})
}

fn with(mut provider: Value, field: &str, value: Value) -> Value {
    provider[field] = value;
    provider
}

fn rsa_jwks() -> Value {
    json!({"jwks": jwks(&[RSA.jwk_with_kid("k1")])})
}

#[test]
fn the_documented_example_compiles() {
    let p = compile(json!([{
        "name": "corp", "issuer": "https://idp.example", "audiences": ["tollgate"], "algorithms": ["RS256", "ES256"],
        "keys": {"remote": {"cluster": "jwks_idp", "authority": "idp.example", "path": "/.well-known/jwks.json",
                            "timeout_ms": 2000, "refresh_interval_s": 600, "min_refresh_interval_s": 30, "max_stale_s": 86400}},
        "leeway_s": 60, "required_claims": ["sub"], "consumer_claim": "sub",
        "claims_to_headers": {"email": "X-User-Email"}, "token_cache_size": 1024
    }, {
        "name": "partner", "algorithms": ["HS256"], "keys": {"secret": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, SECRET)}
    }]))
    .unwrap();
    assert_eq!(p.names().collect::<Vec<_>>(), ["corp", "partner"]);
    let corp = p.get("corp").unwrap();
    assert_eq!(corp.claim_header_names().collect::<Vec<_>>(), ["x-user-email"]);
    assert_eq!(p.tick_period(), Some(std::time::Duration::from_secs(30)));
    assert!(p.get("nope").is_none());
}

#[test]
fn algorithms_must_match_the_key_types() {
    let hs_with_rsa = config_error(provider_json(&["RS256", "HS256"], rsa_jwks()));
    assert_eq!(hs_with_rsa, "auth.jwt_providers[0].algorithms: HMAC (HS*) and public-key algorithms cannot be mixed in one provider");
    let hs_with_pem = config_error(provider_json(&["HS256"], json!({"pem": RSA.pem})));
    assert!(
        hs_with_pem.starts_with("auth.jwt_providers[0].keys.pem: no key here can verify HS256"),
        "{hs_with_pem}"
    );
    let rs_with_secret =
        config_error(provider_json(&["RS256"], json!({"secret": "x".repeat(64), "secret_encoding": "utf8"})));
    assert!(
        rs_with_secret.starts_with("auth.jwt_providers[0].keys.secret: no key here can verify RS256"),
        "{rs_with_secret}"
    );
    let es384_with_p256 = config_error(provider_json(&["ES384"], json!({"pem": P256.pem})));
    assert!(es384_with_p256.contains("no key here can verify ES384"), "{es384_with_p256}");
    let hs_remote = config_error(provider_json(&["HS256"], remote()));
    assert!(
        hs_remote.starts_with("auth.jwt_providers[0].keys.remote: a remote JWKS never supplies HMAC"),
        "{hs_remote}"
    );
    let eddsa_with_rsa_jwks = config_error(provider_json(&["RS256", "EdDSA"], rsa_jwks()));
    assert!(eddsa_with_rsa_jwks.contains("keys.jwks: no key here can verify EdDSA"), "{eddsa_with_rsa_jwks}");
}

#[test]
fn none_and_unknown_algorithms_are_config_errors() {
    let none = config_error(provider_json(&["RS256", "none"], rsa_jwks()));
    assert!(none.starts_with("auth.jwt_providers[0].algorithms[1]: \"none\" is not one of"), "{none}");
    let empty = config_error(provider_json(&[], rsa_jwks()));
    assert_eq!(empty, "auth.jwt_providers[0].algorithms: list at least one algorithm");
}

#[test]
fn hmac_secrets_must_be_long_enough_for_their_hash() {
    let short =
        config_error(provider_json(&["HS256"], json!({"secret": "too short", "secret_encoding": "utf8"})));
    assert_eq!(short, "auth.jwt_providers[0].keys.secret: HMAC secrets must be at least 32 bytes");
    let hs512 = config_error(provider_json(
        &["HS256", "HS512"],
        json!({"secret": "x".repeat(48), "secret_encoding": "utf8"}),
    ));
    assert!(hs512.ends_with("at least 64 bytes"), "{hs512}");
    let not_b64 = config_error(provider_json(&["HS256"], json!({"secret": "!!!"})));
    assert_eq!(not_b64, "auth.jwt_providers[0].keys.secret: is not valid base64");
}

#[test]
fn exactly_one_key_source_is_given() {
    let two = config_error(provider_json(
        &["RS256"],
        json!({"pem": RSA.pem, "jwks": jwks(std::slice::from_ref(&RSA.jwk))}),
    ));
    assert_eq!(two, "auth.jwt_providers[0].keys: give exactly one of jwks, pem, secret, remote");
    let zero = config_error(provider_json(&["RS256"], json!({})));
    assert_eq!(zero, "auth.jwt_providers[0].keys: give exactly one of jwks, pem, secret, remote");
    let stray = config_error(provider_json(&["RS256"], json!({"pem": RSA.pem, "secret_encoding": "utf8"})));
    assert_eq!(stray, "auth.jwt_providers[0].keys.secret_encoding: only applies to secret");
}

#[test]
fn broken_inline_keys_name_their_index() {
    let small_rsa = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
    let err = config_error(provider_json(&["RS256"], json!({"jwks": jwks(&[RSA.jwk.clone(), small_rsa])})));
    assert_eq!(err, "auth.jwt_providers[0].keys.jwks.keys[1]: RSA keys must have at least 2048 bits");
    let short_ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
    let err = config_error(provider_json(&["EdDSA"], json!({"jwks": jwks(&[short_ed])})));
    assert_eq!(err, "auth.jwt_providers[0].keys.jwks.keys[0]: Ed25519 public keys are 32 bytes");
    let bad_kid = RSA.jwk_with_kid("../k1");
    let err = config_error(provider_json(&["RS256"], json!({"jwks": jwks(&[bad_kid])})));
    assert!(err.starts_with("auth.jwt_providers[0].keys.jwks.keys[0]: kid must be"), "{err}");
    let err = config_error(provider_json(&["RS256"], json!({"jwks": {"nokeys": []}})));
    assert!(err.starts_with("auth.jwt_providers[0].keys.jwks: a JWKS is an object"), "{err}");
    let err = config_error(provider_json(
        &["ES256"],
        json!({"jwks": jwks(&[json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"})])}),
    ));
    assert!(err.contains("unsupported EC curve \"P-521\""), "{err}");
    let err = config_error(provider_json(
        &["RS256"],
        json!({"pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}),
    ));
    assert!(err.starts_with("auth.jwt_providers[0].keys.pem: malformed key"), "{err}");
}

#[test]
fn remote_settings_are_bounded() {
    let base = provider_json(&["RS256"], remote());
    let cases = [
        ("path", json!("jwks.json"), "keys.remote.path: must start with '/'"),
        ("cluster", json!(""), "keys.remote.cluster: must not be empty"),
        ("timeout_ms", json!(0), "keys.remote.timeout_ms: must be between 1 and 60000"),
        ("refresh_interval_s", json!(0), "keys.remote.refresh_interval_s: must be > 0"),
        ("min_refresh_interval_s", json!(900), "keys.remote.min_refresh_interval_s: must be > 0 and at most"),
        (
            "min_refresh_interval_s",
            json!(1),
            "keys.remote.min_refresh_interval_s: must be at least timeout_ms",
        ),
    ];
    for (field, value, expected) in cases {
        let mut raw = base.clone();
        raw["keys"]["remote"][field] = value;
        let err = config_error(raw);
        assert!(err.starts_with(&format!("auth.jwt_providers[0].{expected}")), "{err}");
    }
}

#[test]
fn provider_fields_are_validated_with_their_paths() {
    let base = provider_json(&["RS256"], rsa_jwks());
    let cases = [
        ("name", json!("corp/evil"), "name: must be 1-64 letters"),
        ("issuer", json!(""), "issuer: must not be empty"),
        ("audiences", json!(["ok", ""]), "audiences[1]: must not be empty"),
        ("leeway_s", json!(7200), "leeway_s: must be at most 3600"),
        ("consumer_claim", json!(""), "consumer_claim: must not be empty"),
        ("max_token_bytes", json!(100), "max_token_bytes: must be between 512 and 65536"),
        ("token_cache_size", json!(1_000_000), "token_cache_size: must be at most 100000"),
        ("claims_to_headers", json!({"email": "x user"}), "claims_to_headers.email: must map a claim"),
        ("claims_to_headers", json!({"email": "Host"}), "claims_to_headers.email: must map a claim"),
        (
            "claims_to_headers",
            json!({"a": "x-h", "b": "X-H"}),
            "claims_to_headers.b: header \"x-h\" is used twice",
        ),
    ];
    for (field, value, expected) in cases {
        let err = config_error(with(base.clone(), field, value));
        assert!(err.starts_with(&format!("auth.jwt_providers[0].{expected}")), "{err}");
    }
}

#[test]
fn names_are_unique_and_unknown_fields_refused() {
    let p = provider_json(&["RS256"], rsa_jwks());
    let err = compile(json!([p.clone(), p.clone()])).unwrap_err().to_string();
    assert_eq!(err, "auth.jwt_providers[1].name: provider \"corp\" is defined twice");
    let err = compile(json!([with(p.clone(), "audience", json!("x"))])).unwrap_err().to_string();
    assert!(err.contains("unknown field `audience`"), "{err}");
    let err = compile(json!([with(
        p,
        "keys",
        json!({"remote": {"cluster": "c", "authority": "a", "path": "/", "url": "x"}})
    )]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `url`"), "{err}");
}

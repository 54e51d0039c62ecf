//! Hostile credentials against the real `dist/tollgate.wasm`: every one is refused with a JSON 401, none
//! traps the VM (a trap would make `run()` fail and kill the VM for every later request), and the same VM
//! still admits good credentials afterwards.

// Test helpers: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "auth_support/idp.rs"]
mod idp;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tollgate_harness::host::{Exchange, Request, Response, Vm};

use idp::{api_key, assert_refused, b64, claims, forge, now_secs, sign, AUDIENCE, ISSUER, RS256};

fn provider() -> serde_json::Value {
    json!({
        "name": "rs", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"],
        "keys": {"pem": RS256.pem}, "claims_to_headers": {"email": "x-user-email"}
    })
}

/// The head bound raised past the megabyte tokens below, so that auth's own bounds are what refuse them
/// (with the default `limits`, a head over 64 KiB is refused before auth reads it: 431).
fn head_limits() -> serde_json::Value {
    json!({"max_request_header_bytes": 4 << 20})
}

/// JWTs only (RS256, the key given as PEM as many deployments do): every bearer value reaches the JWT parser.
fn jwt_vm() -> Vm {
    let config = json!({"limits": head_limits(), "auth": {"jwt_providers": [provider()]}});
    idp::host().plugin(config.to_string()).start().unwrap()
}

/// API keys and JWTs: `/jwt/` takes only tokens, everything else only API keys. Both share
/// `Authorization: Bearer`, where a value not shaped like a JWT counts as an API key.
fn vm() -> Vm {
    let config = json!({"limits": head_limits(), "auth": {
        "consumers": [{"name": "alice", "api_keys": [api_key(1).config_entry()]}],
        "jwt_providers": [provider()],
        "routes": [{"path_prefix": "/jwt/", "require": "jwt"}],
        "default": "api_key"
    }});
    idp::host().plugin(config.to_string()).start().unwrap()
}

fn bearer(vm: &mut Vm, path: &str, value: &str) -> Exchange {
    vm.send(Request::get(path).header("authorization", &format!("Bearer {value}")))
        .respond_with(Response::status(200))
        .run()
        .unwrap_or_else(|e| panic!("the VM failed on a hostile credential: {e}"))
}

/// What each hostile token is refused as, when it reaches the JWT parser.
fn hostile_tokens(now: u64) -> Vec<(&'static str, String, &'static str)> {
    let good_claims = claims("alice", now);
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let nested = "[".repeat(5000);
    vec![
        ("malformed base64", format!("{}.{}.c2ln", "eyJ!!!", b64(b"{}")), "jwt_malformed"),
        (
            "padding in a segment",
            format!("{}=.{}.c2ln", b64(header.to_string().as_bytes()), b64(b"{}")),
            "jwt_malformed",
        ),
        ("one segment", "abc".into(), "jwt_malformed"),
        ("two segments", "abc.def".into(), "jwt_malformed"),
        ("four segments", format!("{}.x", RS256.sign(None, &good_claims)), "jwt_malformed"),
        ("only dots", "..".into(), "jwt_malformed"),
        ("header not JSON", format!("{}.{}.c2ln", b64(b"not json"), b64(b"{}")), "jwt_malformed"),
        (
            "claims not JSON",
            format!("{}.{}.c2ln", b64(header.to_string().as_bytes()), b64(b"{oops")),
            "jwt_malformed",
        ),
        ("claims a JSON array", forge(&header, &json!([1, 2])), "jwt_malformed"),
        (
            "claims nested 5000 deep",
            format!("{}.{}.c2ln", b64(header.to_string().as_bytes()), b64(nested.as_bytes())),
            "jwt_malformed",
        ),
        (
            "alg none",
            format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(good_claims.to_string().as_bytes())),
            "jwt_algorithm_not_allowed",
        ),
        (
            "alg nOnE with a signature",
            forge(&json!({"alg": "nOnE"}), &good_claims),
            "jwt_algorithm_not_allowed",
        ),
        ("alg not a string", forge(&json!({"alg": 256}), &good_claims), "jwt_malformed"),
        (
            "HS256 keyed with the RS256 public key PEM",
            sign(Algorithm::HS256, &EncodingKey::from_secret(RS256.pem.as_bytes()), None, &good_claims),
            "jwt_algorithm_not_allowed",
        ),
        (
            "kid with path characters",
            forge(&json!({"alg": "RS256", "kid": "../../etc/passwd"}), &good_claims),
            "jwt_malformed",
        ),
        ("kid with a NUL", forge(&json!({"alg": "RS256", "kid": "k\u{0}1"}), &good_claims), "jwt_malformed"),
        ("critical header", forge(&json!({"alg": "RS256", "crit": ["exp"]}), &good_claims), "jwt_malformed"),
        (
            "embedded jwk is ignored",
            forge(&json!({"alg": "RS256", "jwk": RS256.jwk}), &good_claims),
            "jwt_bad_signature",
        ),
        (
            "signature not base64url",
            format!(
                "{}.{}.c2l+",
                b64(header.to_string().as_bytes()),
                b64(good_claims.to_string().as_bytes())
            ),
            "jwt_malformed",
        ),
        ("forged signature", forge(&header, &good_claims), "jwt_bad_signature"),
        (
            "exp not a number",
            RS256.sign(None, &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "a", "exp": "never"})),
            "jwt_malformed",
        ),
        (
            "exp absurdly large",
            RS256.sign(None, &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "a", "exp": 1e300})),
            "jwt_malformed",
        ),
        (
            "sub an object",
            RS256.sign(None, &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": {"a": 1}, "exp": now + 60})),
            "jwt_bad_consumer_claim",
        ),
        ("non-ASCII garbage", "\u{ff}\u{fe}.\u{80}\u{7f}.\u{fffd}".into(), "jwt_malformed"),
        ("a megabyte", "A".repeat(1 << 20), "jwt_too_large"),
        ("a megabyte of dots", ".".repeat(1 << 20), "jwt_too_large"),
    ]
}

#[test]
fn hostile_tokens_are_refused_and_the_vm_keeps_serving() {
    let mut vm = jwt_vm();
    let now = now_secs(vm.host());
    let cases = hostile_tokens(now);
    for (what, token, code) in &cases {
        let ex = bearer(&mut vm, "/jwt/chat", token);
        assert_eq!((ex.downstream.status, idp::error_code(&ex).as_str()), (401, *code), "{what}");
        assert!(ex.upstream.is_none(), "{what}");
        assert!(ex.downstream.body.len() < 1024, "{what}: the reply does not grow with the token");
    }
    for empty in ["", "   "] {
        let ex = bearer(&mut vm, "/jwt/chat", empty);
        assert_refused(&ex, 401, "missing_credentials");
    }
    assert_eq!(vm.metric("tollgate_auth_invalid_total"), Some(cases.len() as i64));

    let ex = bearer(&mut vm, "/jwt/chat", &RS256.sign(None, &claims("alice", now)));
    assert_eq!(ex.downstream.status, 200, "a good token after all that: {}", ex.downstream.body_str());
    assert_eq!(ex.upstream.unwrap().header("x-tollgate-consumer"), Some("alice"));
}

#[test]
fn with_api_keys_sharing_the_bearer_header_hostile_tokens_are_still_refused() {
    let mut vm = vm();
    let now = now_secs(vm.host());
    for (what, token, code) in hostile_tokens(now) {
        let ex = bearer(&mut vm, "/jwt/chat", &token);
        // Values not shaped like a JWT count as API keys, which this route does not take.
        let jwt_shaped = token.split('.').count() == 3
            && token.split('.').all(|s| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        let expected = if jwt_shaped { code } else { "missing_credentials" };
        assert_eq!((ex.downstream.status, idp::error_code(&ex).as_str()), (401, expected), "{what}");
        // On an API-key route, the same values are wrong keys or (JWT-shaped) no key at all.
        let ex = bearer(&mut vm, "/v1/models", &token);
        let expected = if jwt_shaped { "missing_credentials" } else { "invalid_api_key" };
        assert_eq!((ex.downstream.status, idp::error_code(&ex).as_str()), (401, expected), "{what}");
    }
    let ex = bearer(&mut vm, "/jwt/chat", &RS256.sign(None, &claims("alice", now)));
    assert_eq!(ex.downstream.status, 200);
    let ex = bearer(&mut vm, "/v1/models", &api_key(1).key);
    assert_eq!(ex.downstream.status, 200);
}

#[test]
fn claims_cannot_inject_headers_upstream() {
    let mut vm = jwt_vm();
    let mut c = claims("alice\r\nx-evil: 1", now_secs(vm.host()));
    c["email"] = json!("a@b\r\nx-admin: true");
    let ex = bearer(&mut vm, "/jwt/chat", &RS256.sign(None, &c));
    // A consumer claim with control characters is refused outright...
    assert_refused(&ex, 401, "jwt_bad_consumer_claim");

    let mut c = claims("alice", now_secs(vm.host()));
    c["email"] = json!("a@b\r\nx-admin: true");
    let ex = bearer(&mut vm, "/jwt/chat", &RS256.sign(None, &c));
    assert_eq!(ex.downstream.status, 200);
    let up = ex.upstream.unwrap();
    // ...and a claim that could smuggle a line break is left out of its header.
    assert_eq!(up.header("x-tollgate-consumer"), Some("alice"));
    assert_eq!(up.header("x-user-email"), None);
    assert_eq!(up.header("x-admin"), None);
}

#[test]
fn hostile_api_keys_are_refused_and_the_vm_keeps_serving() {
    let mut vm = vm();
    let big = "k".repeat(64 * 1024);
    let cases = [
        Request::get("/v1/models").header("x-api-key", &big),
        Request::get("/v1/models").header("authorization", &format!("Bearer {big}")),
        Request::get("/v1/models").header("api-key", "\u{ff}\u{0}\u{7f}"),
        Request::get("/v1/models").header("x-api-key", &format!("{} ", api_key(1).key.to_uppercase())),
        // A JWT-shaped value in x-api-key is just a wrong key there.
        Request::get("/v1/models").header("x-api-key", &RS256.sign(None, &json!({"sub": "alice"}))),
    ];
    for request in cases {
        let ex = vm.send(request).run().unwrap_or_else(|e| panic!("the VM failed: {e}"));
        assert_refused(&ex, 401, "invalid_api_key");
    }
    let ex = vm.send(Request::get("/v1/models").header("x-api-key", &api_key(1).key)).run().unwrap();
    assert_eq!(ex.downstream.status, 200);
    assert_eq!(ex.upstream.unwrap().header("x-tollgate-consumer"), Some("alice"));
}

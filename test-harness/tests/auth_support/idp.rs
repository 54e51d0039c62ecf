//! A stand-in identity provider for the auth tests: signing keys and their JWKs, tokens signed natively
//! (jsonwebtoken, the same crate the filter verifies with), API keys, and readers for the error bodies
//! clients get. Included by the `auth_*` tests with `#[path]`; each uses part of it.

#![allow(dead_code)] // each test file uses a different part
// Test fixtures: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::LazyLock;
use std::time::UNIX_EPOCH;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tollgate_auth::GeneratedKey;
use tollgate_harness::host::{Exchange, Host};

pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "tollgate";

pub fn host() -> Host {
    Host::load(tollgate_harness::tollgate_wasm()).expect("load dist/tollgate.wasm (run ./build.sh)")
}

/// The host's virtual time in whole seconds (it starts at 2024-01-01T00:00:00Z).
pub fn now_secs(host: &Host) -> u64 {
    host.now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signing key and its public half as a JWK (without `kid`).
pub struct SigningKey {
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as SPKI PEM.
    pub pem: String,
}

impl SigningKey {
    pub fn jwk(&self, kid: &str) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk
    }

    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        sign(self.alg, &self.encoding, kid, claims)
    }
}

/// A P-256 key derived from `seed`, so tests are reproducible and need no entropy.
pub fn es256(seed: u8) -> SigningKey {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let private = p256::ecdsa::SigningKey::from_slice(&[seed.max(1); 32]).unwrap();
    let point = private.verifying_key().to_encoded_point(false);
    SigningKey {
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(private.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())}),
        pem: pem("PUBLIC KEY", private.verifying_key().to_public_key_der().unwrap().as_bytes()),
    }
}

/// One RSA-2048 key per test binary (generating one takes a moment).
pub static RS256: LazyLock<SigningKey> = LazyLock::new(|| {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    SigningKey {
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes()),
        jwk: json!({"kty": "RSA", "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())}),
        pem: pem("PUBLIC KEY", public.to_public_key_der().unwrap().as_bytes()),
    }
});

pub fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Claims the test providers accept, valid for an hour from `now`.
pub fn claims(sub: &str, now: u64) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "email": format!("{sub}@example.com"),
        "iat": now, "exp": now + 3600,
    })
}

/// A token with a hand-written header and claims and a junk signature, for shapes no signer emits.
pub fn forge(header: &Value, claims: &Value) -> String {
    format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(b"sig"))
}

pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// An API key made the way `tollgate-replay keygen` makes them, from fixed randomness.
pub fn api_key(seed: u8) -> GeneratedKey {
    GeneratedKey::from_random(&[seed; 32], &[seed, 0, 0, 1])
}

/// The `error` object of a JSON error reply.
pub fn error(ex: &Exchange) -> Value {
    let body: Value = serde_json::from_str(ex.downstream.body_str())
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {:?}", ex.downstream.body_str()));
    body["error"].clone()
}

/// The `error.code` of a JSON error reply.
pub fn error_code(ex: &Exchange) -> String {
    error(ex)["code"].as_str().unwrap_or_default().to_string()
}

/// Asserts a refusal: status, machine code, and that the request never reached the upstream.
pub fn assert_refused(ex: &Exchange, status: u16, code: &str) {
    assert_eq!(
        (ex.downstream.status, error_code(ex).as_str()),
        (status, code),
        "body: {}",
        ex.downstream.body_str()
    );
    assert!(ex.upstream.is_none(), "a refused request must not reach the upstream");
    assert_eq!(ex.downstream.header("content-type"), Some("application/json"));
}

//! Test keys (generated once per test run), token minting and provider construction.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{ConfigError, ConfigPath};

use crate::jwt::{JwtProviders, JwtVerdict, RawJwtProvider, VerifiedToken};

pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "tollgate";
/// `MemoryHost`'s starting time.
pub const NOW: u64 = 1_700_000_000;
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A private key to sign with and its public half as a JWK (without `kid`) and as PEM.
pub struct TestKey {
    pub signing: EncodingKey,
    pub jwk: Value,
    pub pem: String,
}

impl TestKey {
    pub fn jwk_with_kid(&self, kid: &str) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_key() -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    let public = private.to_public_key();
    TestKey {
        signing: EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes()),
        jwk: json!({"kty": "RSA", "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())}),
        pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

pub static RSA: LazyLock<TestKey> = LazyLock::new(rsa_key);
pub static RSA_OTHER: LazyLock<TestKey> = LazyLock::new(rsa_key);

pub static P256: LazyLock<TestKey> = LazyLock::new(|| {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = p256::ecdsa::SigningKey::random(&mut OsRng);
    let point = private.verifying_key().to_encoded_point(false);
    TestKey {
        signing: EncodingKey::from_ec_der(private.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())}),
        pem: private.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
});

pub static P384: LazyLock<TestKey> = LazyLock::new(|| {
    use p384::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = p384::ecdsa::SigningKey::random(&mut OsRng);
    let point = private.verifying_key().to_encoded_point(false);
    TestKey {
        signing: EncodingKey::from_ec_der(private.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-384", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())}),
        pem: private.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
});

pub static ED25519: LazyLock<TestKey> = LazyLock::new(|| {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use p256::pkcs8::LineEnding;
    let private = ed25519_dalek::SigningKey::generate(&mut OsRng);
    TestKey {
        signing: EncodingKey::from_ed_der(private.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(private.verifying_key().as_bytes())}),
        pem: private.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
});

/// Claims that pass a provider built by `provider_json`, expiring 10 minutes after `NOW`.
pub fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "email": "alice@example.com", "exp": NOW + 600, "iat": NOW})
}

pub fn mint(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with a hand-written header and claims and a junk signature, for shapes no signer would emit.
pub fn forge(header: &Value, claims: &Value) -> String {
    format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(b"sig"))
}

/// One provider named `corp` checking issuer, audience and `sub`, with the given algorithms and keys.
pub fn provider_json(algorithms: &[&str], keys: Value) -> Value {
    json!({
        "name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": algorithms, "keys": keys,
        "required_claims": ["sub"], "claims_to_headers": {"email": "x-user-email"}
    })
}

pub fn compile(providers: Value) -> Result<JwtProviders, ConfigError> {
    let raw: Vec<RawJwtProvider> =
        serde_json::from_value(providers).map_err(|e| ConfigError::at("", e.to_string()))?;
    JwtProviders::compile(raw, &ConfigPath::root().field("auth").field("jwt_providers"))
}

pub fn providers(algorithms: &[&str], keys: Value) -> JwtProviders {
    compile(json!([provider_json(algorithms, keys)])).unwrap()
}

pub fn config_error(provider: Value) -> String {
    compile(json!([provider])).unwrap_err().to_string()
}

pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

pub fn verify(providers: &JwtProviders, token: &str, host: &MemoryHost) -> JwtVerdict {
    providers.verify("corp", token, host.ports()).unwrap()
}

pub fn valid(verdict: JwtVerdict) -> VerifiedToken {
    match verdict {
        JwtVerdict::Valid(token) => token,
        other => panic!("expected a valid token, got {other:?}"),
    }
}

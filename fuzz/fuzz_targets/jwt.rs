//! JWT verification with a fixed config: two HS256 providers (one per issuer) and an ES256 provider with an
//! inline JWKS, behind an auth route that requires a JWT. The first byte picks what the rest of the input is:
//!
//! * 0: a bearer token as is (shape, base64url, header, `alg`, `kid`, claims, issuer routing);
//! * 1, 2: `header JSON \0 claims JSON`, signed here with the config's HS256 secret or ES256 key, so that the
//!   claim checks after the signature (`exp`, `nbf`, `iss`, `aud`, required and consumer claims, claim
//!   headers) see fuzzed claims;
//! * 3: a JWKS document, served to a provider with a remote JWKS (then tokens are verified against it) and
//!   compiled as an inline `keys.jwks` for one algorithm;
//! * 4: a PEM public key compiled as `keys.pem`.
//!
//! Providers are compiled for every input: each keeps a cache of verified tokens, which must not carry
//! state from one input to the next.
#![no_main]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::Sha256;
use tollgate_auth::jwt::{JwtProviders, JwtVerdict, RawJwtProvider};
use tollgate_auth::{Auth, AuthDecision, RawAuthConfig};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{CallOutcome, ConfigPath, RequestHead};
use tollgate_fuzz::{fields, text};

const SECRET: &[u8] = b"tollgate-fuzz-hs256-secret-0123456789abcdef";
/// The ES256 private scalar (any value below the P-256 order works).
const ES256_SCALAR: [u8; 32] = [
    0x1f, 0x5e, 0x2c, 0x41, 0x99, 0x07, 0xa3, 0x6b, 0x52, 0xde, 0x10, 0x4f, 0x8c, 0x33, 0x7a, 0x21, 0x64,
    0x0b, 0xe8, 0x95, 0x2d, 0x47, 0xc1, 0x3e, 0x76, 0x58, 0x0f, 0xba, 0x19, 0xd2, 0x83, 0x6c,
];
const ES256_KID: &str = "es-1";

fn es256_key() -> SigningKey {
    SigningKey::from_bytes(&ES256_SCALAR.into()).expect("the scalar is a valid P-256 key")
}

fn es256_jwk() -> Value {
    let point = es256_key().verifying_key().to_encoded_point(false);
    let coordinate = |c: Option<&p256::FieldBytes>| URL_SAFE_NO_PAD.encode(c.expect("uncompressed point"));
    json!({"kty": "EC", "crv": "P-256", "kid": ES256_KID, "alg": "ES256", "use": "sig",
           "x": coordinate(point.x()), "y": coordinate(point.y())})
}

thread_local! {
    static JWK: Value = es256_jwk();
}

fn auth() -> Auth {
    let jwk = JWK.with(Value::clone);
    let raw = json!({
        "consumers": [{"name": "alice", "group": "staff"}],
        "jwt_providers": [
            {"name": "hs", "issuer": "https://hs.example", "audiences": ["tollgate", "api"], "algorithms": ["HS256"],
             "keys": {"secret": STANDARD.encode(SECRET)}, "required_claims": ["sub"], "leeway_s": 30,
             "claims_to_headers": {"email": "x-user-email", "groups": "x-user-groups"}},
            {"name": "other", "issuer": "https://other.example", "algorithms": ["HS256", "HS384"],
             "keys": {"secret": "a-utf8-secret-of-forty-eight-bytes-for-hs384!!!!", "secret_encoding": "utf8"}},
            {"name": "es", "issuer": "https://es.example", "algorithms": ["ES256"],
             "keys": {"jwks": {"keys": [jwk]}}, "consumer_claim": "client_id", "max_token_bytes": 4096}
        ],
        "routes": [{"path_prefix": "/", "require": "jwt", "consumer_methods": [{"groups": ["staff"], "methods": ["GET"]}]}]
    });
    let raw: RawAuthConfig = serde_json::from_value(raw).expect("the fixed config parses");
    Auth::compile(raw, &ConfigPath::root().field("auth")).expect("the fixed config compiles")
}

fn providers(raw: Value) -> Option<JwtProviders> {
    let raw: Vec<RawJwtProvider> = serde_json::from_value(raw).ok()?;
    JwtProviders::compile(raw, &ConfigPath::root().field("jwt_providers")).ok()
}

/// Authenticates `Authorization: Bearer <token>` twice: the second time the verified-token cache answers.
fn bearer(auth: &Auth, token: &str, host: &MemoryHost) {
    let head = RequestHead::from_pairs([
        (":method", "GET"),
        (":path", "/v1/models"),
        ("authorization", &format!("Bearer {token}")),
    ]);
    for _ in 0..2 {
        match auth.authenticate(&head, host.ports()) {
            AuthDecision::Allow(authorized) => {
                let _ = authorized.consumer;
            }
            AuthDecision::Deny(error) => {
                let _ = (error.status(), error.code(), error.to_reply());
            }
            AuthDecision::NeedsKeys(_) => {}
        }
    }
    for provider in ["hs", "other", "es"] {
        if let Some(JwtVerdict::Rejected(rejection)) = auth.jwt().verify(provider, token, host.ports()) {
            let _ = (rejection.code(), rejection.status(), rejection.to_string());
        }
    }
}

fn signed(header: &[u8], claims: &[u8], sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hs256(input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

fn es256(input: &[u8]) -> Vec<u8> {
    let signature: Signature = es256_key().sign(input);
    signature.to_bytes().to_vec()
}

/// Tokens a JWKS could verify: the ES256 key's, and RS256 and EdDSA ones whose signatures are junk (what the
/// verifiers do with a fuzzed key matters, not whether they accept).
fn jwks_tokens() -> Vec<String> {
    let claims = br#"{"sub":"alice","exp":1900000000,"iss":"https://idp.example"}"#;
    let junk = |_: &[u8]| vec![7u8; 256];
    vec![
        signed(format!(r#"{{"alg":"ES256","kid":"{ES256_KID}"}}"#).as_bytes(), claims, es256),
        signed(br#"{"alg":"ES256"}"#, claims, es256),
        signed(br#"{"alg":"RS256","kid":"rsa-1"}"#, claims, junk),
        signed(br#"{"alg":"PS256"}"#, claims, junk),
        signed(br#"{"alg":"EdDSA"}"#, claims, |_| vec![1u8; 64]),
    ]
}

fn verify_all(providers: &JwtProviders, name: &str, host: &MemoryHost) {
    for token in jwks_tokens() {
        if let Some(JwtVerdict::Valid(verified)) = providers.verify(name, &token, host.ports()) {
            let _ = verified.consumer;
        }
    }
}

fn jwks(doc: &[u8], selector: u8, host: &MemoryHost) {
    let remote = json!([{
        "name": "remote", "algorithms": ["ES256", "RS256", "PS256", "EdDSA"], "token_cache_size": 0,
        "keys": {"remote": {"cluster": "idp", "authority": "idp.example", "path": "/jwks.json"}}
    }]);
    let remote = providers(remote).expect("the remote provider compiles");
    // The first token pauses for keys, the answer is stored for every worker, and then tokens meet them.
    let _ = remote.verify("remote", &jwks_tokens()[0], host.ports());
    let status = if selector & 0x80 == 0 { 200 } else { 203 };
    let outcome = CallOutcome::Response { status, headers: Vec::new(), body: doc.to_vec() };
    let _ = remote.on_jwks_response("remote", &outcome, host.ports());
    verify_all(&remote, "remote", host);

    let Ok(doc) = serde_json::from_slice::<Value>(doc) else { return };
    let algorithm = ["ES256", "RS256", "PS384", "EdDSA", "ES384", "HS256"][usize::from(selector % 6)];
    let inline = json!([{"name": "inline", "algorithms": [algorithm], "keys": {"jwks": doc}}]);
    if let Some(inline) = providers(inline) {
        verify_all(&inline, "inline", host);
    }
}

fn pem(text: &str, selector: u8, host: &MemoryHost) {
    let algorithm = ["ES256", "RS256", "PS512", "EdDSA", "ES384"][usize::from(selector % 5)];
    let config = json!([{"name": "pem", "algorithms": [algorithm], "keys": {"pem": text}}]);
    if let Some(pem) = providers(config) {
        verify_all(&pem, "pem", host);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let host = MemoryHost::default();
    match mode % 5 {
        0 => {
            if let Some(token) = text(rest) {
                bearer(&auth(), token, &host);
            }
        }
        1 | 2 => {
            let parts = fields(rest, 2);
            let (header, claims) = (parts[0], parts.get(1).copied().unwrap_or_default());
            let token = match mode % 5 {
                1 => signed(header, claims, hs256),
                _ => signed(header, claims, es256),
            };
            bearer(&auth(), &token, &host);
        }
        3 => jwks(rest, mode / 5, &host),
        _ => {
            if let Some(text) = text(rest) {
                pem(text, mode / 5, &host);
            }
        }
    }
});

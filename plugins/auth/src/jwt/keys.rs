//! Verification keys: built from JWKS documents, PEM public keys or HMAC secrets, each tagged with the one
//! kind of algorithm it may verify, so that no key is ever used under a foreign algorithm family.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::pem::PublicKey;
use super::token::{algorithm_from_name, is_valid_kid, ParsedToken};

/// More keys than any real JWKS holds; bounds the work a token without `kid` can cause.
const MAX_KEYS: usize = 64;
/// RSA moduli below 2048 bits are refused (NIST SP 800-131A); the verifier itself refuses above 4096.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// What a key can verify: one algorithm family, and for curves one curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
    Hmac,
}

impl KeyKind {
    pub fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        match self {
            KeyKind::Rsa => matches!(alg, A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512),
            KeyKind::P256 => alg == A::ES256,
            KeyKind::P384 => alg == A::ES384,
            KeyKind::Ed25519 => alg == A::EdDSA,
            KeyKind::Hmac => matches!(alg, A::HS256 | A::HS384 | A::HS512),
        }
    }
}

#[derive(Debug)]
pub(crate) struct VerificationKey {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it pins the key to one algorithm.
    pub alg: Option<Algorithm>,
    pub kind: KeyKind,
    key: DecodingKey,
}

impl VerificationKey {
    pub fn hmac(secret: &[u8]) -> Self {
        VerificationKey { kid: None, alg: None, kind: KeyKind::Hmac, key: DecodingKey::from_secret(secret) }
    }

    /// Whether this key may be tried for a token: same algorithm family and curve, the JWK's own `alg` (if
    /// any) agrees, and the token's `kid` (if any) names this key or the key has no id.
    pub fn accepts(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        self.kind.verifies(alg)
            && self.alg.is_none_or(|pinned| pinned == alg)
            && match (kid, &self.kid) {
                (Some(wanted), Some(own)) => wanted == own,
                _ => true,
            }
    }

    pub fn verifies(&self, token: &ParsedToken<'_>) -> bool {
        let input = token.signing_input.as_bytes();
        super::crypto::install();
        matches!(jsonwebtoken::crypto::verify(token.signature, input, &self.key, token.alg), Ok(true))
    }

    pub fn secret_len(&self) -> Option<usize> {
        match self.kind {
            KeyKind::Hmac => self.key.try_get_as_bytes().ok().map(<[u8]>::len),
            _ => None,
        }
    }
}

/// The keys of one provider.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerificationKey>,
}

impl KeySet {
    pub fn new(keys: Vec<VerificationKey>) -> Self {
        KeySet { keys }
    }

    pub fn candidates<'a>(
        &'a self,
        alg: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a VerificationKey> + 'a {
        self.keys.iter().filter(move |k| k.accepts(alg, kid))
    }

    /// Whether some key could verify tokens of `alg`.
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|k| k.kind.verifies(alg) && k.alg.is_none_or(|a| a == alg))
    }

    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }
}

/// A parsed JWKS: the usable keys, and for each entry that was refused, its index and why.
pub(crate) struct ParsedJwks {
    pub keys: KeySet,
    pub refused: Vec<(usize, String)>,
}

/// Parses a JWKS document (`{"keys": [...]}`). Entries not meant for signatures (`use` other than `sig`,
/// an encryption `alg`) are skipped silently; broken or unsupported ones are reported in `refused`.
/// Symmetric (`oct`) keys are only taken when `allow_secrets` (inline config, never over the network).
pub(crate) fn parse_jwks(doc: &Value, allow_secrets: bool) -> Result<ParsedJwks, String> {
    let entries = match doc.get("keys") {
        Some(Value::Array(entries)) => entries,
        _ => return Err("a JWKS is an object with a \"keys\" array".into()),
    };
    if entries.len() > MAX_KEYS {
        return Err(format!("a JWKS may hold at most {MAX_KEYS} keys"));
    }
    let mut keys = Vec::new();
    let mut refused = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match parse_jwk(entry, allow_secrets) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(message) => refused.push((i, message)),
        }
    }
    Ok(ParsedJwks { keys: KeySet::new(keys), refused })
}

fn parse_jwk(entry: &Value, allow_secrets: bool) -> Result<Option<VerificationKey>, String> {
    let Value::Object(jwk) = entry else {
        return Err("a JWK is a JSON object".into());
    };
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => match algorithm_from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(None),
        },
        Some(_) => return Err("alg is not a string".into()),
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) if is_valid_kid(kid) => Some(kid.clone()),
        Some(_) => return Err("kid must be a string of letters, digits and -_.:+=~@".into()),
    };
    let (kind, key) = match text(jwk, "kty")? {
        "RSA" => rsa_key(&b64_field(jwk, "n")?, &b64_field(jwk, "e")?)?,
        "EC" => ec_key(text(jwk, "crv")?, &b64_field(jwk, "x")?, &b64_field(jwk, "y")?)?,
        "OKP" if text(jwk, "crv")? == "Ed25519" => ed25519_key(&b64_field(jwk, "x")?)?,
        "OKP" => return Err("only the Ed25519 curve is supported for OKP keys".into()),
        "oct" if allow_secrets => (KeyKind::Hmac, DecodingKey::from_secret(&b64_field(jwk, "k")?)),
        "oct" => return Err("symmetric (oct) keys are only accepted inline in the config".into()),
        other => return Err(format!("unsupported kty {other:?}")),
    };
    if let Some(alg) = alg {
        if !kind.verifies(alg) {
            return Err(format!("alg {alg:?} does not fit the key type"));
        }
    }
    Ok(Some(VerificationKey { kid, alg, kind, key }))
}

/// Reads a single PEM public key (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`, or a certificate).
pub(crate) fn parse_pem(pem: &str) -> Result<VerificationKey, String> {
    let (kind, key) = match super::pem::public_key(pem)? {
        PublicKey::Rsa { n, e } => rsa_key(&n, &e)?,
        PublicKey::Ec { crv, x, y } => ec_key(crv, &x, &y)?,
        PublicKey::Ed25519(x) => ed25519_key(&x)?,
    };
    Ok(VerificationKey { kid: None, alg: None, kind, key })
}

fn rsa_key(n: &[u8], e: &[u8]) -> Result<(KeyKind, DecodingKey), String> {
    let n = trim_leading_zeros(n);
    if n.len() < MIN_RSA_MODULUS_BYTES {
        return Err("RSA keys must have at least 2048 bits".into());
    }
    let e = trim_leading_zeros(e);
    if e.is_empty() || e.len() > 8 {
        return Err("RSA exponent is out of range".into());
    }
    Ok((KeyKind::Rsa, DecodingKey::from_rsa_raw_components(n, e)))
}

fn ec_key(crv: &str, x: &[u8], y: &[u8]) -> Result<(KeyKind, DecodingKey), String> {
    let (kind, len) = match crv {
        "P-256" => (KeyKind::P256, 32),
        "P-384" => (KeyKind::P384, 48),
        other => return Err(format!("unsupported EC curve {other:?}")),
    };
    if x.len() != len || y.len() != len {
        return Err(format!("{crv} coordinates must be {len} bytes"));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Ok((kind, DecodingKey::from_ec_der(&point)))
}

// jsonwebtoken slices the first 32 bytes of an Ed25519 key without checking the length, so it is checked
// here, before a DecodingKey exists.
fn ed25519_key(x: &[u8]) -> Result<(KeyKind, DecodingKey), String> {
    if x.len() != 32 {
        return Err("Ed25519 public keys are 32 bytes".into());
    }
    Ok((KeyKind::Ed25519, DecodingKey::from_ed_der(x)))
}

fn text<'a>(jwk: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    jwk.get(field).and_then(Value::as_str).ok_or_else(|| format!("{field} is missing or not a string"))
}

fn b64_field(jwk: &Map<String, Value>, field: &str) -> Result<Vec<u8>, String> {
    b64(text(jwk, field)?).map_err(|_| format!("{field} is not base64url"))
}

fn b64(value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(value).map_err(|_| "not base64url".to_string())
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

//! The raw `auth.jwt_providers[]` entries as written in JSON, and their compilation into checked settings.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use tollgate_core::{header_name, ConfigError, ConfigPath};

use super::keys::{parse_jwks, parse_pem, KeyKind, KeySet, VerificationKey};
use super::token::algorithm_from_name;

/// One JWT issuer as configured: `{"name", "issuer", "audiences", "algorithms", "keys", ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtProvider {
    pub name: String,
    /// Required `iss`; when absent, any issuer is accepted.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values (any one suffices); when empty, `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub keys: RawJwtKeys,
    #[serde(default = "defaults::leeway_s")]
    pub leeway_s: u64,
    /// Claims that must be present (`exp` always is).
    #[serde(default)]
    pub required_claims: Vec<String>,
    #[serde(default = "defaults::consumer_claim")]
    pub consumer_claim: String,
    /// Claim name → upstream header name.
    #[serde(default)]
    pub claims_to_headers: BTreeMap<String, String>,
    /// Verified tokens remembered per worker; 0 turns the cache off.
    #[serde(default = "defaults::token_cache_size")]
    pub token_cache_size: usize,
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
}

/// Exactly one of `jwks` (inline document), `pem`, `secret` (+ `secret_encoding`) or `remote`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtKeys {
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub pem: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_encoding: Option<SecretEncoding>,
    #[serde(default)]
    pub remote: Option<RawRemoteJwks>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretEncoding {
    #[default]
    Base64,
    Utf8,
}

/// A JWKS fetched through an Envoy cluster.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "defaults::refresh_interval_s")]
    pub refresh_interval_s: u64,
    #[serde(default = "defaults::min_refresh_interval_s")]
    pub min_refresh_interval_s: u64,
    #[serde(default = "defaults::max_stale_s")]
    pub max_stale_s: u64,
}

mod defaults {
    pub fn leeway_s() -> u64 {
        60
    }
    pub fn consumer_claim() -> String {
        "sub".into()
    }
    pub fn token_cache_size() -> usize {
        1024
    }
    pub fn max_token_bytes() -> usize {
        8192
    }
    pub fn timeout_ms() -> u64 {
        2000
    }
    pub fn refresh_interval_s() -> u64 {
        600
    }
    pub fn min_refresh_interval_s() -> u64 {
        30
    }
    pub fn max_stale_s() -> u64 {
        86_400
    }
}

/// The checked settings of one provider.
#[derive(Debug)]
pub(crate) struct Settings {
    pub name: String,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway_s: u64,
    pub required_claims: Vec<String>,
    pub consumer_claim: String,
    /// (claim, lower-case header name)
    pub claims_to_headers: Vec<(String, String)>,
    pub token_cache_size: usize,
    pub max_token_bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteSettings {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout: Duration,
    pub refresh_interval_s: u64,
    pub min_refresh_interval_s: u64,
    pub max_stale_s: u64,
}

#[derive(Debug)]
pub(crate) enum CompiledKeys {
    Static(KeySet),
    Remote(RemoteSettings),
}

pub(crate) fn compile(
    raw: RawJwtProvider,
    path: &ConfigPath,
) -> Result<(Settings, CompiledKeys), ConfigError> {
    let name = raw.name;
    let valid_name = name.len() <= 64
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid_name {
        return Err(path.field("name").error("must be 1-64 letters, digits, '.', '_' or '-'"));
    }
    let algorithms = compile_algorithms(&raw.algorithms, &path.field("algorithms"))?;
    let keys = compile_keys(raw.keys, &algorithms, &path.field("keys"))?;
    if raw.issuer.as_deref() == Some("") {
        return Err(path.field("issuer").error("must not be empty (omit it to accept any issuer)"));
    }
    non_empty_strings(&raw.audiences, &path.field("audiences"))?;
    non_empty_strings(&raw.required_claims, &path.field("required_claims"))?;
    if raw.leeway_s > 3600 {
        return Err(path.field("leeway_s").error("must be at most 3600"));
    }
    if raw.consumer_claim.is_empty() {
        return Err(path.field("consumer_claim").error("must not be empty"));
    }
    if raw.token_cache_size > 100_000 {
        return Err(path.field("token_cache_size").error("must be at most 100000"));
    }
    if !(512..=65_536).contains(&raw.max_token_bytes) {
        return Err(path.field("max_token_bytes").error("must be between 512 and 65536"));
    }
    let claims_to_headers = compile_claim_headers(raw.claims_to_headers, &path.field("claims_to_headers"))?;
    let settings = Settings {
        name,
        issuer: raw.issuer,
        audiences: raw.audiences,
        algorithms,
        leeway_s: raw.leeway_s,
        required_claims: raw.required_claims,
        consumer_claim: raw.consumer_claim,
        claims_to_headers,
        token_cache_size: raw.token_cache_size,
        max_token_bytes: raw.max_token_bytes,
    };
    Ok((settings, keys))
}

fn compile_algorithms(names: &[String], path: &ConfigPath) -> Result<Vec<Algorithm>, ConfigError> {
    if names.is_empty() {
        return Err(path.error("list at least one algorithm"));
    }
    let mut algorithms = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let alg = algorithm_from_name(name).ok_or_else(|| {
            path.index(i).error(format!(
                "{name:?} is not one of RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512"
            ))
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    let hmac = algorithms.iter().filter(|a| KeyKind::Hmac.verifies(**a)).count();
    if hmac != 0 && hmac != algorithms.len() {
        // One provider mixing secrets and public keys is how HS/RS confusion attacks start.
        return Err(path.error("HMAC (HS*) and public-key algorithms cannot be mixed in one provider"));
    }
    Ok(algorithms)
}

fn compile_keys(
    raw: RawJwtKeys,
    algorithms: &[Algorithm],
    path: &ConfigPath,
) -> Result<CompiledKeys, ConfigError> {
    let given = [raw.jwks.is_some(), raw.pem.is_some(), raw.secret.is_some(), raw.remote.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(path.error("give exactly one of jwks, pem, secret, remote"));
    }
    if raw.secret_encoding.is_some() && raw.secret.is_none() {
        return Err(path.field("secret_encoding").error("only applies to secret"));
    }
    let keys = if let Some(doc) = raw.jwks {
        let jwks_path = path.field("jwks");
        let parsed = parse_jwks(&doc, true).map_err(|m| jwks_path.error(m))?;
        if let Some((i, message)) = parsed.refused.into_iter().next() {
            return Err(jwks_path.field("keys").index(i).error(message));
        }
        (parsed.keys, jwks_path)
    } else if let Some(pem) = raw.pem {
        let key = parse_pem(&pem).map_err(|m| path.field("pem").error(m))?;
        (KeySet::new(vec![key]), path.field("pem"))
    } else if let Some(secret) = raw.secret {
        let bytes = decode_secret(&secret, raw.secret_encoding.unwrap_or_default())
            .ok_or_else(|| path.field("secret").error("is not valid base64"))?;
        (KeySet::new(vec![VerificationKey::hmac(&bytes)]), path.field("secret"))
    } else if let Some(remote) = raw.remote {
        return compile_remote(remote, algorithms, &path.field("remote")).map(CompiledKeys::Remote);
    } else {
        return Err(path.error("give exactly one of jwks, pem, secret, remote"));
    };
    let (keys, keys_path) = keys;
    for alg in algorithms {
        if !keys.supports(*alg) {
            return Err(keys_path.error(format!("no key here can verify {alg:?}, which algorithms allows")));
        }
    }
    for key in keys.keys() {
        let needed = algorithms.iter().filter_map(|a| min_secret_len(*a)).max().unwrap_or(0);
        if key.secret_len().is_some_and(|len| len < needed) {
            // RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
            return Err(keys_path.error(format!("HMAC secrets must be at least {needed} bytes")));
        }
    }
    Ok(CompiledKeys::Static(keys))
}

fn compile_remote(
    raw: RawRemoteJwks,
    algorithms: &[Algorithm],
    path: &ConfigPath,
) -> Result<RemoteSettings, ConfigError> {
    if algorithms.iter().any(|a| KeyKind::Hmac.verifies(*a)) {
        return Err(path.error("a remote JWKS never supplies HMAC secrets; HS* algorithms need keys.secret"));
    }
    if raw.cluster.is_empty() {
        return Err(path.field("cluster").error("must not be empty"));
    }
    if raw.authority.is_empty() {
        return Err(path.field("authority").error("must not be empty"));
    }
    if !raw.path.starts_with('/') {
        return Err(path.field("path").error("must start with '/'"));
    }
    if !(1..=60_000).contains(&raw.timeout_ms) {
        return Err(path.field("timeout_ms").error("must be between 1 and 60000"));
    }
    if raw.refresh_interval_s == 0 {
        return Err(path.field("refresh_interval_s").error("must be > 0"));
    }
    let min = raw.min_refresh_interval_s;
    if min == 0 || min > raw.refresh_interval_s {
        return Err(path.field("min_refresh_interval_s").error("must be > 0 and at most refresh_interval_s"));
    }
    if min.saturating_mul(1000) < raw.timeout_ms {
        // Otherwise a second worker could start a fetch while the first is still waiting for its answer.
        return Err(path.field("min_refresh_interval_s").error("must be at least timeout_ms"));
    }
    Ok(RemoteSettings {
        cluster: raw.cluster,
        authority: raw.authority,
        path: raw.path,
        timeout: Duration::from_millis(raw.timeout_ms),
        refresh_interval_s: raw.refresh_interval_s,
        min_refresh_interval_s: min,
        max_stale_s: raw.max_stale_s,
    })
}

fn compile_claim_headers(
    raw: BTreeMap<String, String>,
    path: &ConfigPath,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut compiled: Vec<(String, String)> = Vec::new();
    for (claim, header) in raw {
        let at = path.field(&claim);
        let header = match header_name(&header, &at) {
            Ok(header) if !claim.is_empty() => header,
            _ => return Err(at.error("must map a claim to a header name the filter may write")),
        };
        if compiled.iter().any(|(_, h)| *h == header) {
            return Err(at.error(format!("header {header:?} is used twice")));
        }
        compiled.push((claim, header));
    }
    Ok(compiled)
}

fn non_empty_strings(values: &[String], path: &ConfigPath) -> Result<(), ConfigError> {
    match values.iter().position(String::is_empty) {
        Some(i) => Err(path.index(i).error("must not be empty")),
        None => Ok(()),
    }
}

fn min_secret_len(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::HS256 => Some(32),
        Algorithm::HS384 => Some(48),
        Algorithm::HS512 => Some(64),
        _ => None,
    }
}

fn decode_secret(secret: &str, encoding: SecretEncoding) -> Option<Vec<u8>> {
    let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    match encoding {
        SecretEncoding::Utf8 => Some(secret.as_bytes().to_vec()),
        SecretEncoding::Base64 => GeneralPurpose::new(&alphabet::STANDARD, lenient)
            .decode(secret)
            .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, lenient).decode(secret))
            .ok(),
    }
}

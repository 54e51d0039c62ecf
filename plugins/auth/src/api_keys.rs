use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tollgate_core::{ConfigError, ConfigPath};

/// One entry of `auth.consumers[].api_keys`, as written in config. The key itself is never configured,
/// only its SHA-256 (see `keygen`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// A public name for the key, unique across all consumers; appears in logs, errors and config only.
    pub id: String,
    /// Lower- or upper-case hex SHA-256 of the key.
    pub sha256: String,
    /// RFC 3339; the key is refused from this instant on.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Path prefixes the key may be used on; empty: every route.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Models the key may use; a trailing `*` matches any suffix; empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
}

/// A configured key: the digest to match, the consumer it belongs to, and its limits.
#[derive(Debug)]
pub struct ApiKey {
    pub id: String,
    /// Index into the consumers of the compiled `Auth`.
    pub consumer: usize,
    digest: [u8; 32],
    expires_at: Option<SystemTime>,
    routes: Vec<String>,
    /// Shared with each request's `Authorized` so the model check after the body needs no copy.
    pub models: Option<ModelScope>,
}

impl ApiKey {
    /// Whether the key may be used on a canonical request path.
    pub fn permits_path(&self, path: &str) -> bool {
        self.routes.is_empty() || self.routes.iter().any(|prefix| path.starts_with(prefix.as_str()))
    }
}

/// The models a key is limited to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelScope(Arc<[String]>);

impl ModelScope {
    pub fn permits(&self, model: &str) -> bool {
        self.0.iter().any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => allowed == model,
        })
    }
}

/// What a presented key turned out to be.
#[derive(Debug)]
pub enum KeyCheck<'a> {
    Valid(&'a ApiKey),
    Expired(&'a ApiKey),
    Unknown,
}

/// Every configured key, indexed by the SHA-256 of the key.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], ApiKey>,
    /// Key id → config path of its first use, for duplicate detection while compiling.
    ids: HashMap<String, ConfigPath>,
    /// Keys this worker has seen match a configured digest, by their text: a repeat finds its digest here
    /// instead of computing the SHA-256 (most of a key check's cost). Only text that matched a digest goes
    /// in, so it holds at most one entry per configured key, whatever clients send.
    seen: RefCell<HashTable<SeenKey>>,
    hasher: DefaultHashBuilder,
}

/// A key's text and its digest. Its `Debug` leaves the text out.
struct SeenKey {
    text: Box<str>,
    digest: [u8; 32],
}

impl SeenKey {
    fn is(&self, presented: &str) -> bool {
        same_secret(&self.text, presented)
    }
}

/// Whether two secrets are equal, in time that depends only on their lengths: an OR of the bytes'
/// differences, with no early exit, judged by one constant-time comparison. (A plain `==` stops at the first
/// difference, which would tell a client how much of a remembered key or token its guess shares.)
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && bool::from(diff.ct_eq(&0))
}

impl std::fmt::Debug for SeenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeenKey(..)")
    }
}

impl ApiKeys {
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn add(&mut self, raw: RawApiKey, consumer: usize, path: &ConfigPath) -> Result<(), ConfigError> {
        let id_path = path.field("id");
        if raw.id.is_empty() || raw.id.len() > 128 || !raw.id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(id_path.error("must be 1 to 128 visible ASCII characters"));
        }
        if let Some(first) = self.ids.get(&raw.id) {
            return Err(id_path.error(format!("key id {:?} is already used at {first}", raw.id)));
        }
        let digest = parse_digest(&raw.sha256)
            .ok_or_else(|| path.field("sha256").error("must be 64 hex characters"))?;
        if let Some(other) = self.by_digest.get(&digest) {
            return Err(path.field("sha256").error(format!("is the same key as {:?}", other.id)));
        }
        let expires_at = match raw.expires_at {
            Some(text) => Some(parse_rfc3339(&text).ok_or_else(|| {
                path.field("expires_at").error("must be an RFC 3339 timestamp, e.g. 2027-01-01T00:00:00Z")
            })?),
            None => None,
        };
        if let Some(i) = raw.routes.iter().position(|r| !r.starts_with('/')) {
            return Err(path.field("routes").index(i).error("must be a path prefix starting with '/'"));
        }
        if let Some(i) = raw.models.iter().position(|m| m.is_empty() || m == "*") {
            return Err(path
                .field("models")
                .index(i)
                .error("must name a model (omit `models` to allow every model)"));
        }
        let models = (!raw.models.is_empty()).then(|| ModelScope(raw.models.into()));
        self.ids.insert(raw.id.clone(), id_path);
        self.by_digest
            .insert(digest, ApiKey { id: raw.id, consumer, digest, expires_at, routes: raw.routes, models });
        Ok(())
    }

    /// Looks a presented key up by its digest. The map lookup itself compares digests in variable time,
    /// which is harmless: the attacker learns at most how much of SHA-256(guess) matches a stored digest,
    /// and that does not help find a key (preimage resistance). The accept decision is nevertheless a
    /// constant-time comparison, so it stays sound if the index ever changes (e.g. to a digest prefix).
    pub fn check(&self, presented: &str, now: SystemTime) -> KeyCheck<'_> {
        let hash = self.hasher.hash_one(presented);
        let seen =
            self.seen.try_borrow().ok().and_then(|seen| Some(seen.find(hash, |k| k.is(presented))?.digest));
        let digest = seen.unwrap_or_else(|| digest(presented));
        let Some(key) = self.by_digest.get(&digest) else {
            return KeyCheck::Unknown;
        };
        if !bool::from(words(&key.digest)[..].ct_eq(&words(&digest)[..])) {
            return KeyCheck::Unknown;
        }
        if seen.is_none() {
            if let Ok(mut table) = self.seen.try_borrow_mut() {
                let entry = SeenKey { text: presented.into(), digest };
                table.insert_unique(hash, entry, |k| self.hasher.hash_one(&*k.text));
            }
        }
        match key.expires_at {
            Some(at) if now >= at => KeyCheck::Expired(key),
            _ => KeyCheck::Valid(key),
        }
    }
}

/// A digest as four words, for a constant-time comparison that takes four steps rather than 32 (`subtle`
/// puts an optimisation barrier, a call in wasm, after each step).
fn words(digest: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, bytes) in words.iter_mut().zip(digest.chunks_exact(8)) {
        *word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    }
    words
}

/// SHA-256 of a key as presented.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const KEY: &str = "tg_secret";

    fn sha(key: &str) -> String {
        hex::encode(digest(key))
    }

    fn raw(json: serde_json::Value) -> RawApiKey {
        serde_json::from_value(json).unwrap()
    }

    fn at(text: &str) -> SystemTime {
        parse_rfc3339(text).unwrap()
    }

    fn keys(entries: Vec<serde_json::Value>) -> Result<ApiKeys, ConfigError> {
        let mut keys = ApiKeys::default();
        let path = ConfigPath::root().field("keys");
        for (i, entry) in entries.into_iter().enumerate() {
            keys.add(raw(entry), 0, &path.index(i))?;
        }
        Ok(keys)
    }

    #[test]
    fn presented_keys_are_found_by_hash() {
        let keys = keys(vec![serde_json::json!({"id": "k-1", "sha256": sha(KEY).to_uppercase()})]).unwrap();
        let now = at("2026-01-01T00:00:00Z");
        assert!(matches!(keys.check(KEY, now), KeyCheck::Valid(k) if k.id == "k-1"));
        assert!(matches!(keys.check("tg_secreT", now), KeyCheck::Unknown));
        assert!(matches!(keys.check("", now), KeyCheck::Unknown));
    }

    #[test]
    fn a_key_seen_before_is_judged_as_the_first_time() {
        let keys = keys(vec![
            serde_json::json!({"id": "k-1", "sha256": sha(KEY), "expires_at": "2027-01-01T00:00:00Z"}),
            serde_json::json!({"id": "k-2", "sha256": sha("tg_other")}),
        ])
        .unwrap();
        let before = at("2026-01-01T00:00:00Z");
        for _ in 0..3 {
            assert!(matches!(keys.check(KEY, before), KeyCheck::Valid(k) if k.id == "k-1"));
            assert!(matches!(keys.check("tg_other", before), KeyCheck::Valid(k) if k.id == "k-2"));
        }
        // Near misses of a remembered key: one byte off, a prefix, an extension.
        for guess in ["tg_secreT", "tg_secre", "tg_secret ", "tg_secret\0", "tg_other_"] {
            assert!(matches!(keys.check(guess, before), KeyCheck::Unknown), "{guess:?}");
        }
        // Remembering a key does not outlive its expiry.
        assert!(matches!(keys.check(KEY, at("2027-01-01T00:00:00Z")), KeyCheck::Expired(k) if k.id == "k-1"));
    }

    #[test]
    fn only_configured_keys_are_remembered() {
        let keys = keys(vec![serde_json::json!({"id": "k-1", "sha256": sha(KEY)})]).unwrap();
        for i in 0..1000 {
            assert!(matches!(
                keys.check(&format!("tg_guess_{i}"), SystemTime::UNIX_EPOCH),
                KeyCheck::Unknown
            ));
            assert!(matches!(keys.check(KEY, SystemTime::UNIX_EPOCH), KeyCheck::Valid(_)));
        }
        assert_eq!(keys.seen.borrow().len(), 1);
        assert_eq!(format!("{keys:?}").matches(KEY).count(), 0, "Debug leaves remembered keys out");
    }

    #[test]
    fn expiry_is_exclusive_of_the_instant() {
        let keys = keys(vec![
            serde_json::json!({"id": "k-1", "sha256": sha(KEY), "expires_at": "2027-01-01T01:00:00+01:00"}),
        ])
        .unwrap();
        let expiry = at("2027-01-01T00:00:00Z");
        assert!(matches!(keys.check(KEY, expiry - Duration::from_secs(1)), KeyCheck::Valid(_)));
        assert!(matches!(keys.check(KEY, expiry), KeyCheck::Expired(k) if k.id == "k-1"));
    }

    #[test]
    fn route_and_model_scopes() {
        let keys = keys(vec![
            serde_json::json!({"id": "k-1", "sha256": sha(KEY), "routes": ["/v1/chat/", "/v1/embeddings"], "models": ["gpt-4o", "claude-*"]}),
        ])
        .unwrap();
        let KeyCheck::Valid(key) = keys.check(KEY, SystemTime::UNIX_EPOCH) else { panic!("valid key") };
        assert!(key.permits_path("/v1/chat/completions"));
        assert!(key.permits_path("/v1/embeddings"));
        assert!(!key.permits_path("/v1/images"));
        let models = key.models.clone().unwrap();
        assert!(models.permits("gpt-4o"));
        assert!(!models.permits("gpt-4o-mini"));
        assert!(models.permits("claude-3-5-sonnet"));
        assert!(!models.permits("o1"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |entries| keys(entries).unwrap_err().to_string();
        let good = serde_json::json!({"id": "k-1", "sha256": sha(KEY)});
        assert_eq!(
            err(vec![good.clone(), serde_json::json!({"id": "k-2", "sha256": "abc"})]),
            "keys[1].sha256: must be 64 hex characters"
        );
        assert_eq!(
            err(vec![serde_json::json!({"id": "k-1", "sha256": "zz".repeat(32)})]),
            "keys[0].sha256: must be 64 hex characters"
        );
        assert_eq!(
            err(vec![good.clone(), serde_json::json!({"id": "k-1", "sha256": sha("other")})]),
            r#"keys[1].id: key id "k-1" is already used at keys[0].id"#
        );
        assert_eq!(
            err(vec![good.clone(), serde_json::json!({"id": "k-2", "sha256": sha(KEY)})]),
            r#"keys[1].sha256: is the same key as "k-1""#
        );
        assert!(err(vec![serde_json::json!({"id": "k-1", "sha256": sha(KEY), "expires_at": "2027-01-01"})])
            .starts_with("keys[0].expires_at: must be an RFC 3339 timestamp"));
        assert_eq!(
            err(vec![serde_json::json!({"id": "k-1", "sha256": sha(KEY), "routes": ["v1"]})]),
            "keys[0].routes[0]: must be a path prefix starting with '/'"
        );
        assert!(err(vec![serde_json::json!({"id": "k 1", "sha256": sha(KEY)})])
            .starts_with("keys[0].id: must be"));
        assert!(err(vec![serde_json::json!({"id": "k-1", "sha256": sha(KEY), "models": [""]})])
            .starts_with("keys[0].models[0]: must name a model"));
        assert!(serde_json::from_value::<RawApiKey>(
            serde_json::json!({"id": "k", "sha256": "", "key": "x"})
        )
        .is_err());
    }
}

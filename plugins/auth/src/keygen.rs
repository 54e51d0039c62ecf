//! New API keys for operators: the key goes to the client, only its id and SHA-256 go into config.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::api_keys::digest;

/// Every generated key starts with this, so leaked keys are easy to recognise (e.g. by secret scanners).
pub const KEY_PREFIX: &str = "tg_";

/// A freshly generated key: `key` is shown once to the operator; `id` and `sha256` go into config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedKey {
    pub key: String,
    pub id: String,
    pub sha256: String,
}

impl GeneratedKey {
    /// Builds a key from caller-supplied randomness: 32 bytes (256 bits) for the secret, 4 for the id. Pure,
    /// so the wasm filter never needs an entropy source and tests are deterministic.
    pub fn from_random(secret: &[u8; 32], id: &[u8; 4]) -> Self {
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let sha256 = hex::encode(digest(&key));
        GeneratedKey { key, id: format!("k-{}", hex::encode(id)), sha256 }
    }

    /// The `api_keys` entry to paste into a consumer's config.
    pub fn config_entry(&self) -> serde_json::Value {
        serde_json::json!({ "id": self.id, "sha256": self.sha256 })
    }
}

/// A new key from the operating system's random source. Only with the `keygen` feature (the CLI), so the
/// filter does not link an entropy source it never uses.
#[cfg(feature = "keygen")]
pub fn keygen() -> Result<GeneratedKey, getrandom::Error> {
    let mut secret = [0u8; 32];
    let mut id = [0u8; 4];
    getrandom::getrandom(&mut secret)?;
    getrandom::getrandom(&mut id)?;
    Ok(GeneratedKey::from_random(&secret, &id))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tollgate_core::ConfigPath;

    use super::*;
    use crate::api_keys::{ApiKeys, KeyCheck};

    #[test]
    fn generated_keys_verify_against_their_config_entry() {
        let generated = GeneratedKey::from_random(&[7; 32], &[0xab, 0xcd, 0x01, 0x02]);
        assert!(generated.key.starts_with("tg_"));
        assert_eq!(generated.key.len(), 3 + 43);
        assert_eq!(generated.id, "k-abcd0102");
        assert_eq!(generated.sha256.len(), 64);
        let mut keys = ApiKeys::default();
        let raw = serde_json::from_value(generated.config_entry()).unwrap();
        keys.add(raw, 0, &ConfigPath::root()).unwrap();
        assert!(
            matches!(keys.check(&generated.key, SystemTime::UNIX_EPOCH), KeyCheck::Valid(k) if k.id == generated.id)
        );
    }

    #[test]
    fn different_randomness_gives_different_keys() {
        let a = GeneratedKey::from_random(&[1; 32], &[1; 4]);
        let b = GeneratedKey::from_random(&[2; 32], &[1; 4]);
        assert_ne!(a.key, b.key);
        assert_ne!(a.sha256, b.sha256);
    }

    #[cfg(feature = "keygen")]
    #[test]
    fn keygen_uses_fresh_randomness() {
        assert_ne!(keygen().unwrap().key, keygen().unwrap().key);
    }
}

//! Byte strings that read well in JSON: UTF-8 text as a plain string, anything else as
//! `{"base64": "..."}`; and body chunk lists that accept a single string for the common case.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that serialize as a string when they are UTF-8, else as `{"base64": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The bytes as text; non-UTF-8 bodies read as `""` (use `.0` for the raw bytes).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl PartialEq<&str> for Body {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&[u8]> for Body {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BodyRepr {
    Text(String),
    Binary { base64: String },
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => BodyRepr::Binary { base64: base64::engine::general_purpose::STANDARD.encode(&self.0) }
                .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match BodyRepr::deserialize(deserializer)? {
            BodyRepr::Text(text) => Ok(Self(text.into_bytes())),
            BodyRepr::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A body as the chunks it arrives in. JSON: one body (`"text"`) or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chunks(pub Vec<Body>);

impl Chunks {
    /// All chunks concatenated.
    pub fn concat(&self) -> Vec<u8> {
        self.0.iter().flat_map(|c| c.0.iter().copied()).collect()
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Body::is_empty)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ChunksRepr {
    One(Body),
    Many(Vec<Body>),
}

impl Serialize for Chunks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [] => serializer.serialize_str(""),
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Chunks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ChunksRepr::deserialize(deserializer)? {
            ChunksRepr::One(body) if body.is_empty() => Self(Vec::new()),
            ChunksRepr::One(body) => Self(vec![body]),
            ChunksRepr::Many(list) => Self(list),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_a_string_and_binary_is_base64() {
        assert_eq!(serde_json::to_string(&Body::from("hi")).unwrap(), r#""hi""#);
        let bin = Body(vec![0xff, 0]);
        let json = serde_json::to_string(&bin).unwrap();
        assert_eq!(json, r#"{"base64":"/wA="}"#);
        assert_eq!(serde_json::from_str::<Body>(&json).unwrap(), bin);
    }

    #[test]
    fn chunks_accept_one_string_or_a_list() {
        let one: Chunks = serde_json::from_str(r#""abc""#).unwrap();
        assert_eq!(one.0.len(), 1);
        let many: Chunks = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(many.concat(), b"ab");
    }
}

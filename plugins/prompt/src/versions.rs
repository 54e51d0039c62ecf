//! Prompt versions and the weighted choice between them. The choice hashes the request id, so a retried
//! request (same id) meets the same prompt and the split needs no shared state between workers.

use sha2::{Digest, Sha256};
use tollgate_ai::chat::Role;
use tollgate_core::{ConfigError, ConfigPath};

use crate::config::RawVersion;
use crate::template::Template;
use crate::variables::Variables;

/// One message of a version: a role and a template.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageTemplate {
    pub role: Role,
    pub template: Template,
}

/// One version of an endpoint's prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub name: String,
    pub weight: u32,
    pub messages: Vec<MessageTemplate>,
}

/// An endpoint's versions: never empty, weights summing to more than zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Versions {
    first: Version,
    rest: Vec<Version>,
    total_weight: u64,
}

impl Versions {
    pub fn compile(
        raw: Vec<RawVersion>,
        variables: &Variables,
        at: &ConfigPath,
    ) -> Result<Versions, ConfigError> {
        let mut list: Vec<Version> = Vec::with_capacity(raw.len());
        for (i, version) in raw.into_iter().enumerate() {
            let at = at.index(i);
            if version.name.trim().is_empty() {
                return Err(at.field("name").error("must not be empty"));
            }
            if list.iter().any(|v| v.name == version.name) {
                return Err(at.field("name").error(format!("version {:?} is declared twice", version.name)));
            }
            if version.messages.is_empty() {
                return Err(at.field("messages").error("a version needs at least one message"));
            }
            let mut messages = Vec::with_capacity(version.messages.len());
            for (j, message) in version.messages.into_iter().enumerate() {
                let content = at.field("messages").index(j).field("content");
                let template = Template::parse(&message.content, variables, &content)?;
                messages.push(MessageTemplate { role: message.role.into(), template });
            }
            list.push(Version { name: version.name, weight: version.weight, messages });
        }
        let total_weight = list.iter().map(|v| u64::from(v.weight)).sum::<u64>();
        let mut list = list.into_iter();
        let Some(first) = list.next() else {
            return Err(at.error("an endpoint needs at least one version"));
        };
        if total_weight == 0 {
            return Err(at.error("the weights must not all be 0"));
        }
        Ok(Versions { first, rest: list.collect(), total_weight })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Version> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// The version for this request id: the same id always gets the same version, and over many ids each
    /// version's share approaches its weight over the total.
    pub fn select(&self, request_id: &str) -> &Version {
        let digest = Sha256::digest(request_id.as_bytes());
        let bucket = digest.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b));
        // 64 bits reduced by a total of at most ~2^40: the modulo bias is far below anything measurable.
        let mut point = bucket % self.total_weight;
        for version in self.iter() {
            let weight = u64::from(version.weight);
            if point < weight {
                return version;
            }
            point -= weight;
        }
        &self.first
    }

    /// A version by name, for callers that pin one (e.g. replaying a logged request).
    pub fn get(&self, name: &str) -> Option<&Version> {
        self.iter().find(|v| v.name == name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    fn versions(raw: serde_json::Value) -> Result<Versions, String> {
        let raw: Vec<RawVersion> = serde_json::from_value(raw).unwrap();
        Versions::compile(raw, &Variables::default(), &ConfigPath::root().field("versions"))
            .map_err(|e| e.to_string())
    }

    fn weighted(weights: &[u32]) -> Versions {
        let raw: Vec<_> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| json!({"name": format!("v{i}"), "weight": w, "messages": [{"role": "user", "content": "x"}]}))
            .collect();
        versions(json!(raw)).unwrap()
    }

    #[test]
    fn the_same_id_always_gets_the_same_version() {
        let v = weighted(&[1, 1, 1]);
        for id in ["a", "req-42", "", "ünïcode"] {
            let first = v.select(id).name.clone();
            for _ in 0..5 {
                assert_eq!(v.select(id).name, first);
            }
        }
    }

    #[test]
    fn the_split_follows_the_weights() {
        let v = weighted(&[70, 20, 10, 0]);
        let mut counts = [0u32; 4];
        for i in 0..20_000 {
            let name = &v.select(&format!("request-{i}")).name;
            counts[name[1..].parse::<usize>().unwrap()] += 1;
        }
        assert_eq!(counts[3], 0, "a zero weight is never chosen");
        for (count, share) in counts.iter().zip([0.70, 0.20, 0.10]) {
            let observed = f64::from(*count) / 20_000.0;
            assert!((observed - share).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn a_single_version_takes_everything() {
        let v = weighted(&[3]);
        assert!((0..100).all(|i| v.select(&i.to_string()).name == "v0"));
        assert_eq!(v.get("v0").map(|v| v.weight), Some(3));
        assert!(v.get("v9").is_none());
    }

    #[test]
    fn bad_versions_name_their_path() {
        let msg = json!([{"role": "user", "content": "x"}]);
        assert_eq!(versions(json!([])).unwrap_err(), "versions: an endpoint needs at least one version");
        assert_eq!(
            versions(json!([{"name": "a", "weight": 0, "messages": msg}])).unwrap_err(),
            "versions: the weights must not all be 0"
        );
        assert_eq!(
            versions(json!([{"name": "a", "messages": msg}, {"name": "a", "messages": msg}])).unwrap_err(),
            r#"versions[1].name: version "a" is declared twice"#
        );
        assert_eq!(
            versions(json!([{"name": " ", "messages": msg}])).unwrap_err(),
            "versions[0].name: must not be empty"
        );
        assert_eq!(
            versions(json!([{"name": "a", "messages": []}])).unwrap_err(),
            "versions[0].messages: a version needs at least one message"
        );
        assert_eq!(
            versions(json!([{"name": "a", "messages": [{"role": "user", "content": "{{x}}"}]}])).unwrap_err(),
            "versions[0].messages[0].content: {{x}} names no declared variable"
        );
    }
}

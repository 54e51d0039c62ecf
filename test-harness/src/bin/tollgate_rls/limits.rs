//! The limits file and how a descriptor picks its counters: a limit `{domain, rule, max, seconds, by}`
//! applies to a descriptor of a request for `domain` that has the entry `rule = <rule>` and an entry for
//! every `by` key; its counter is per (domain, rule, window, values of the `by` keys).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// The descriptor entry whose value picks the rule, as the filter's RLS descriptors send it.
const RULE_KEY: &str = "rule";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimitsFile {
    limits: Vec<RawLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    domain: String,
    rule: String,
    max: u64,
    seconds: u64,
    #[serde(default)]
    by: Vec<String>,
}

/// One configured limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub domain: String,
    pub rule: String,
    pub max: u64,
    pub seconds: u64,
    pub by: Vec<String>,
}

/// Every configured limit, grouped by domain.
#[derive(Debug, Default)]
pub struct LimitTable {
    by_domain: HashMap<String, Vec<Limit>>,
}

/// A counter one descriptor of a request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter<'a> {
    /// Index of the descriptor in the request.
    pub descriptor: usize,
    pub limit: &'a Limit,
    /// The storage key: the domain as a Redis Cluster hash tag, then rule, window and `by` values as JSON
    /// (so no value can forge another counter's key).
    pub key: String,
}

impl LimitTable {
    /// Reads and compiles a limits file; errors name the file and the JSON path of the bad value.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("bad limits file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw: RawLimitsFile = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| anyhow::anyhow!("{}: {}", err.path(), err.inner()))?;
        let mut table = Self::default();
        for (index, raw) in raw.limits.into_iter().enumerate() {
            let limit = compile(raw).with_context(|| format!("limits[{index}]"))?;
            table.by_domain.entry(limit.domain.clone()).or_default().push(limit);
        }
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.by_domain.values().map(Vec::len).sum()
    }

    /// The counters the descriptors of one request touch, each tagged with its descriptor's index.
    pub fn counters_for(&self, domain: &str, descriptors: &[Vec<(String, String)>]) -> Vec<Counter<'_>> {
        let Some(limits) = self.by_domain.get(domain) else {
            return Vec::new();
        };
        let mut counters = Vec::new();
        for (index, entries) in descriptors.iter().enumerate() {
            // Envoy sends each key once; if a key repeats, the last value wins.
            let lookup = |key: &str| entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            for limit in limits {
                if lookup(RULE_KEY) != Some(limit.rule.as_str()) {
                    continue;
                }
                let values: Option<Vec<(&str, &str)>> =
                    limit.by.iter().map(|key| lookup(key).map(|value| (key.as_str(), value))).collect();
                if let Some(values) = values {
                    let id = serde_json::json!([limit.rule, limit.seconds, values]);
                    let key = format!("tollgate-rls:{{{}}}:{id}", limit.domain);
                    counters.push(Counter { descriptor: index, limit, key });
                }
            }
        }
        counters
    }
}

fn compile(raw: RawLimit) -> anyhow::Result<Limit> {
    if raw.domain.is_empty() {
        bail!("domain: must not be empty");
    }
    if raw.domain.contains(['{', '}']) {
        bail!("domain: must not contain braces (it is the counters' Redis hash tag)");
    }
    if raw.rule.is_empty() {
        bail!("rule: must not be empty");
    }
    if raw.max == 0 {
        bail!("max: must be > 0");
    }
    if raw.seconds == 0 {
        bail!("seconds: must be > 0");
    }
    if let Some(index) = raw.by.iter().position(String::is_empty) {
        bail!("by[{index}]: must not be empty");
    }
    Ok(Limit { domain: raw.domain, rule: raw.rule, max: raw.max, seconds: raw.seconds, by: raw.by })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn table() -> LimitTable {
        LimitTable::parse(
            r#"{"limits":[{"domain":"tollgate","rule":"fleet","max":5,"seconds":60,"by":["consumer"]},
                          {"domain":"tollgate","rule":"odd \"rule\"","max":1,"seconds":1,"by":["x-api-key"]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_limit_needs_its_rule_and_every_by_key() {
        let table = table();
        let hit = table.counters_for("tollgate", &[descriptor(&[("rule", "fleet"), ("consumer", "a")])]);
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].limit.rule, "fleet");
        assert_eq!(hit[0].key, r#"tollgate-rls:{tollgate}:["fleet",60,[["consumer","a"]]]"#);
        for miss in [
            descriptor(&[("rule", "fleet")]),
            descriptor(&[("rule", "other"), ("consumer", "a")]),
            descriptor(&[("consumer", "a")]),
            descriptor(&[]),
        ] {
            assert!(table.counters_for("tollgate", &[miss]).is_empty());
        }
        let other_domain = [descriptor(&[("rule", "fleet"), ("consumer", "a")])];
        assert!(table.counters_for("elsewhere", &other_domain).is_empty());
    }

    #[test]
    fn keys_cannot_be_forged_by_values() {
        let table = table();
        let odd = table
            .counters_for("tollgate", &[descriptor(&[("rule", "odd \"rule\""), ("x-api-key", "k\",\"")])]);
        assert_eq!(odd.len(), 1);
        assert_eq!(odd[0].key, r#"tollgate-rls:{tollgate}:["odd \"rule\"",1,[["x-api-key","k\",\""]]]"#);
    }

    #[test]
    fn each_descriptor_is_matched_alone() {
        let table = table();
        let hits = table.counters_for(
            "tollgate",
            &[descriptor(&[("rule", "none")]), descriptor(&[("rule", "fleet"), ("consumer", "b")])],
        );
        assert_eq!(hits.iter().map(|hit| hit.descriptor).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn bad_files_name_the_json_path() {
        let err =
            LimitTable::parse(r#"{"limits":[{"domain":"d","rule":"r","max":1,"seconds":0}]}"#).unwrap_err();
        assert_eq!(format!("{err:#}"), "limits[0]: seconds: must be > 0");
        let err =
            LimitTable::parse(r#"{"limits":[{"domain":"d","rule":"r","max":"x","seconds":1}]}"#).unwrap_err();
        assert!(format!("{err:#}").starts_with("limits[0].max: "), "{err:#}");
        let err = LimitTable::parse(r#"{"limits":[],"extra":1}"#).unwrap_err();
        assert!(format!("{err:#}").contains("extra"), "{err:#}");
    }
}

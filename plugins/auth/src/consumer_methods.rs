//! `auth.routes[i].consumer_methods`: which HTTP methods some consumers may use on a route, e.g. a
//! `readers` group limited to `GET` and `HEAD`.

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath};

use crate::routes::{check_known, Declared};

/// One entry of `consumer_methods`, as written in config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsumerMethods {
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub consumers: Vec<String>,
    pub methods: Vec<String>,
}

/// The compiled entries. The first entry naming the consumer (by name or by group) decides; a consumer no
/// entry names may use every method the route matches.
#[derive(Debug, Clone, Default)]
pub struct ConsumerMethods {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    groups: Vec<String>,
    consumers: Vec<String>,
    methods: Vec<String>,
}

impl ConsumerMethods {
    pub fn compile(
        raw: Vec<RawConsumerMethods>,
        declared: &Declared<'_>,
        path: &ConfigPath,
    ) -> Result<Self, ConfigError> {
        let mut entries = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            let at = path.index(i);
            if entry.groups.is_empty() && entry.consumers.is_empty() {
                return Err(at.error("must name at least one group or consumer"));
            }
            check_known(&entry.consumers, declared.consumers, "consumer", &at.field("consumers"))?;
            check_known(&entry.groups, declared.groups, "group", &at.field("groups"))?;
            if entry.methods.is_empty() {
                return Err(at.field("methods").error("must list at least one method"));
            }
            for (m, method) in entry.methods.iter().enumerate() {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(at
                        .field("methods")
                        .index(m)
                        .error(format!("{method:?} is not an upper-case HTTP method")));
                }
            }
            entries.push(Entry { groups: entry.groups, consumers: entry.consumers, methods: entry.methods });
        }
        Ok(ConsumerMethods { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `consumer` (in `group`) may use `method`.
    pub fn permits(&self, consumer: &str, group: Option<&str>, method: &str) -> bool {
        let names = |e: &&Entry| {
            e.consumers.iter().any(|c| c == consumer)
                || group.is_some_and(|g| e.groups.iter().any(|x| x == g))
        };
        self.entries.iter().find(names).is_none_or(|e| e.methods.iter().any(|m| m == method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: Declared<'static> = Declared {
        consumers: &["alice", "bob"],
        groups: &["readers", "gold"],
        jwt_providers: &[],
        has_api_keys: true,
    };

    fn compile(json: serde_json::Value) -> Result<ConsumerMethods, ConfigError> {
        let raw = serde_json::from_value(json).unwrap();
        ConsumerMethods::compile(raw, &DECLARED, &ConfigPath::root().field("cm"))
    }

    #[test]
    fn groups_and_names_limit_methods_and_the_first_entry_decides() {
        let rules = compile(serde_json::json!([
            {"groups": ["readers"], "methods": ["GET", "HEAD"]},
            {"consumers": ["bob"], "groups": ["gold"], "methods": ["POST"]}
        ]))
        .unwrap();
        assert!(rules.permits("alice", Some("readers"), "GET"));
        assert!(rules.permits("alice", Some("readers"), "HEAD"));
        assert!(!rules.permits("alice", Some("readers"), "POST"));
        assert!(rules.permits("bob", None, "POST"));
        assert!(!rules.permits("bob", None, "GET"));
        assert!(!rules.permits("carol", Some("gold"), "DELETE"));
        // Named by no entry: unrestricted.
        assert!(rules.permits("carol", Some("silver"), "DELETE"));
        assert!(rules.permits("carol", None, "DELETE"));
        // A reader named again later is still decided by the first entry naming it.
        assert!(!rules.permits("bob", Some("readers"), "POST"));
    }

    #[test]
    fn bad_entries_name_their_path() {
        let err = |json| compile(json).unwrap_err().to_string();
        assert_eq!(
            err(serde_json::json!([{"groups": ["readers"], "methods": ["GET", "get"]}])),
            r#"cm[0].methods[1]: "get" is not an upper-case HTTP method"#
        );
        assert_eq!(
            err(
                serde_json::json!([{"groups": ["readers"], "methods": ["GET"]}, {"consumers": ["carol"], "methods": ["GET"]}])
            ),
            r#"cm[1].consumers[0]: unknown consumer "carol""#
        );
        assert_eq!(
            err(serde_json::json!([{"groups": ["writers"], "methods": ["GET"]}])),
            r#"cm[0].groups[0]: unknown group "writers""#
        );
        assert_eq!(
            err(serde_json::json!([{"methods": ["GET"]}])),
            "cm[0]: must name at least one group or consumer"
        );
        assert_eq!(
            err(serde_json::json!([{"groups": ["gold"], "methods": []}])),
            "cm[0].methods: must list at least one method"
        );
        assert!(serde_json::from_value::<RawConsumerMethods>(
            serde_json::json!({"groups": ["gold"], "methods": ["GET"], "verbs": []})
        )
        .is_err());
    }
}

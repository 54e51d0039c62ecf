use std::collections::BTreeMap;

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath, HeaderEdits};

/// `{"set": {"name": "value"}, "remove": ["name"]}` as written in config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderRules {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Header edits fixed at config time, ready to hand out per request.
#[derive(Debug, Default)]
pub struct HeaderRules {
    edits: HeaderEdits,
}

impl HeaderRules {
    pub fn compile(raw: RawHeaderRules, path: &ConfigPath) -> Result<Self, ConfigError> {
        let mut edits = HeaderEdits::default();
        for (i, name) in raw.remove.into_iter().enumerate() {
            edits.remove.push(checked_name(&name, &path.field("remove").index(i))?);
        }
        for (name, value) in raw.set {
            let at = path.field("set").field(&name);
            let name = checked_name(&name, &at)?;
            edits.set.push((name, checked_value(value, &at)?));
        }
        Ok(HeaderRules { edits })
    }

    /// The edits as a request's own, to add to: nothing to copy when none are configured (the usual case).
    pub fn to_edits(&self) -> HeaderEdits {
        if self.edits.is_empty() {
            HeaderEdits::default()
        } else {
            self.edits.clone()
        }
    }
}

/// A field name the operator may have the filter write; see `tollgate_core::header_name`.
pub fn checked_name(name: &str, path: &ConfigPath) -> Result<String, ConfigError> {
    tollgate_core::header_name(name, path)
}

/// A field value without control characters (which would allow header injection).
pub fn checked_value(value: String, path: &ConfigPath) -> Result<String, ConfigError> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(path.error("header value must not contain control characters"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<HeaderRules, ConfigError> {
        HeaderRules::compile(serde_json::from_str(json).unwrap(), &ConfigPath::root().field("h"))
    }

    #[test]
    fn names_are_lowercased_and_removals_come_first() {
        let rules = compile(r#"{"set":{"X-Tollgate":"on"},"remove":["X-Internal"]}"#).unwrap();
        assert_eq!(rules.to_edits().set, [("x-tollgate".to_string(), "on".to_string())]);
        assert_eq!(rules.to_edits().remove, ["x-internal"]);
    }

    #[test]
    fn bad_names_and_values_are_refused_with_their_path() {
        let e = compile(r#"{"set":{"bad name":"v"}}"#).unwrap_err();
        assert_eq!(e.path.to_string(), "h.set.bad name");
        let e = compile(r#"{"remove":["ok",":path"]}"#).unwrap_err();
        assert_eq!(e.path.to_string(), "h.remove[1]");
        let e = compile(r#"{"set":{"x-a":"v\r\nx-b: injected"}}"#).unwrap_err();
        assert!(e.to_string().contains("control characters"));
        assert!(compile(r#"{"set":{"Transfer-Encoding":"chunked"}}"#).is_err());
    }
}

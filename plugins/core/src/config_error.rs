use std::fmt;

/// A JSON path into the filter configuration, e.g. `ratelimit.rules[2].window`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigPath(String);

impl ConfigPath {
    pub fn root() -> Self {
        ConfigPath(String::new())
    }

    /// The path of a field below this one.
    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            ConfigPath(name.to_string())
        } else {
            ConfigPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of an array element below this one.
    pub fn index(&self, i: usize) -> Self {
        ConfigPath(format!("{}[{i}]", self.0))
    }

    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError { path: self.clone(), message: message.into() }
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(root)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// A rejected configuration: where, and why. Displays as `path: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: ConfigPath,
    pub message: String,
}

impl ConfigError {
    /// An error at a path already rendered as text (as serde_path_to_error reports it; empty for the root).
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        ConfigError { path: ConfigPath(path.to_string()), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_json_paths() {
        let p = ConfigPath::root().field("ratelimit").field("rules").index(2).field("window");
        assert_eq!(p.error("must be > 0").to_string(), "ratelimit.rules[2].window: must be > 0");
        assert_eq!(ConfigPath::root().error("not JSON").to_string(), "(root): not JSON");
    }
}

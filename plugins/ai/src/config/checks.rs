//! Checks on config strings that end up in headers, paths and metric names.

use tollgate_core::{ConfigError, ConfigPath};

/// A header value Envoy will accept: visible ASCII and inner spaces or tabs. `quote` says whether the
/// error may show the value (never for credentials).
pub fn check_header_value(value: &str, at: &ConfigPath, quote: bool) -> Result<(), ConfigError> {
    let shown = |reason: &str| {
        if quote {
            at.error(format!("{value:?} {reason}"))
        } else {
            at.error(format!("the value {reason}"))
        }
    };
    if value.is_empty() {
        return Err(at.error("must not be empty"));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(shown("must not start or end with whitespace"));
    }
    if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Err(shown("is not a valid header value (visible ASCII only)"));
    }
    Ok(())
}

/// A name that is sent in headers and paths: non-empty, no whitespace, no control characters.
pub fn check_name(value: &str, at: &ConfigPath) -> Result<(), ConfigError> {
    check_header_value(value, at, true)?;
    if value.contains([' ', '\t', '/', '?', '#']) {
        return Err(at.error(format!("{value:?} must not contain whitespace, '/', '?' or '#'")));
    }
    Ok(())
}

use tollgate_core::{ConfigError, ConfigPath};

use super::{check_path, RawEndpoint};
use crate::endpoints::{Endpoint, PromptEndpoints};
use crate::output::Output;
use crate::variables::Variables;
use crate::versions::Versions;

/// Variables arrive as a JSON body, so only methods that carry one are accepted.
const METHODS: &[&str] = &["POST", "PUT", "PATCH"];

/// OpenAI limits a `json_schema` name (which is the operation id) to 64 characters.
const MAX_OPERATION_ID: usize = 64;

pub(super) fn compile_all(raw: Vec<RawEndpoint>, path: &ConfigPath) -> Result<PromptEndpoints, ConfigError> {
    let mut list: Vec<Endpoint> = Vec::with_capacity(raw.len());
    for (i, endpoint) in raw.into_iter().enumerate() {
        let at = path.index(i);
        let mut compiled = compile(endpoint, &at)?;
        if let Some(first) = list.iter().position(|e| e.path == compiled.path && e.method == compiled.method)
        {
            return Err(at.field("path").error(format!(
                "{} {} is already served by {}",
                compiled.method,
                compiled.path,
                path.index(first)
            )));
        }
        compiled.operation_id = unique_operation_id(&compiled.operation_id, &list);
        list.push(compiled);
    }
    Ok(PromptEndpoints::new(list))
}

fn compile(raw: RawEndpoint, at: &ConfigPath) -> Result<Endpoint, ConfigError> {
    check_path(&raw.path, &at.field("path"))?;
    let method = raw.method.unwrap_or_else(|| "POST".to_string());
    if !METHODS.contains(&method.as_str()) {
        return Err(at.field("method").error(format!(
            "{method:?} cannot carry the variables' JSON body; use one of {}",
            METHODS.join(", ")
        )));
    }
    if raw.model.trim().is_empty() {
        return Err(at.field("model").error("must not be empty"));
    }
    if let Some(t) = raw.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(at.field("temperature").error("must be between 0 and 2"));
        }
    }
    if raw.max_tokens == Some(0) {
        return Err(at.field("max_tokens").error("must be > 0"));
    }
    if !(1..=600_000).contains(&raw.timeout_ms) {
        return Err(at.field("timeout_ms").error("must be between 1 and 600000"));
    }
    let variables = Variables::compile(raw.variables, &at.field("variables"))?;
    let versions = Versions::compile(raw.versions, &variables, &at.field("versions"))?;
    let output = Output::compile(raw.output, &at.field("output"))?;
    let operation_id = operation_id(&method, &raw.path);
    Ok(Endpoint {
        path: raw.path,
        method,
        model: raw.model,
        description: raw.description,
        operation_id,
        variables,
        versions,
        output,
        temperature: raw.temperature,
        max_tokens: raw.max_tokens,
        timeout: std::time::Duration::from_millis(raw.timeout_ms),
    })
}

/// `post_summarize_v2` for `POST /summarize/v2`: letters, digits and `_` only, as both OpenAPI code
/// generators and OpenAI's `json_schema.name` accept.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for c in path.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' };
        if !(c == '_' && id.ends_with('_')) {
            id.push(c);
        }
    }
    let id = id.trim_end_matches('_');
    id.chars().take(MAX_OPERATION_ID).collect()
}

/// Paths differing only in punctuation (`/a-b`, `/a_b`) map to one id; later ones get a number.
fn unique_operation_id(id: &str, taken: &[Endpoint]) -> String {
    let free = |candidate: &str| !taken.iter().any(|e| e.operation_id == candidate);
    if free(id) {
        return id.to_string();
    }
    (2..)
        .map(|n| {
            let suffix = format!("_{n}");
            let stem: String = id.chars().take(MAX_OPERATION_ID.saturating_sub(suffix.len())).collect();
            stem + &suffix
        })
        .find(|candidate| free(candidate))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn operation_ids_are_readable_identifiers() {
        assert_eq!(operation_id("POST", "/summarize/v2"), "post_summarize_v2");
        assert_eq!(operation_id("PUT", "/a--b/"), "put_a_b");
        assert_eq!(operation_id("POST", "/Ünï-code"), "post_n_code");
        assert_eq!(operation_id("POST", &format!("/{}", "x".repeat(100))).len(), MAX_OPERATION_ID);
    }
}

//! Renders the bench's Envoy bootstraps from the templates in `envoy/bench/`: `{{name}}` placeholders take a
//! value in place; a placeholder alone on its line takes a block of YAML lines, indented to its column.

use anyhow::Context as _;

use crate::rows::Row;

#[derive(Debug, Clone, Copy)]
pub enum Template {
    Bootstrap,
    Wasm,
    RbacKey,
    JwtAuthn,
    LocalRateLimit,
}

impl Template {
    fn file(self) -> &'static str {
        match self {
            Template::Bootstrap => "bootstrap.yaml.tmpl",
            Template::Wasm => "wasm.yaml.tmpl",
            Template::RbacKey => "rbac-key.yaml.tmpl",
            Template::JwtAuthn => "jwt-authn.yaml.tmpl",
            Template::LocalRateLimit => "local-ratelimit.yaml.tmpl",
        }
    }
}

/// `template` with every `{{key}}` replaced by its value; a placeholder left over is an error.
pub fn render(template: Template, values: &[(&str, &str)]) -> anyhow::Result<String> {
    fill(template, read(template)?, values)
}

/// The whole bootstrap of `row`, its upstream at `127.0.0.1:upstream_port`.
pub fn bootstrap(row: &Row, upstream_port: u16) -> anyhow::Result<String> {
    let filters = row.filters.join("\n");
    let mut lines = Vec::new();
    for line in read(Template::Bootstrap)?.lines() {
        if line.trim() == "{{http_filters}}" {
            let indent = line.get(..line.len() - line.trim_start().len()).unwrap_or_default();
            lines.extend(filters.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{indent}{l}")));
        } else {
            lines.push(line.to_owned());
        }
    }
    let values = [
        ("row", row.id.to_lowercase()),
        ("route", row.route.to_owned()),
        ("upstream_port", upstream_port.to_string()),
    ];
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fill(Template::Bootstrap, lines.join("\n") + "\n", &values)
}

fn read(template: Template) -> anyhow::Result<String> {
    let path = tollgate_harness::repo_root().join("envoy/bench").join(template.file());
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn fill(template: Template, mut text: String, values: &[(&str, &str)]) -> anyhow::Result<String> {
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(start) = text.find("{{") {
        let rest = text.get(start..).unwrap_or_default();
        let name = rest.get(..rest.find("}}").map_or(rest.len(), |end| end + 2)).unwrap_or(rest);
        anyhow::bail!("envoy/bench/{}: no value for {name}", template.file());
    }
    Ok(text)
}

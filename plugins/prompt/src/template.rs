//! Message templates: text with `{{variable}}` placeholders, parsed once at config time. Rendering is a
//! single pass over the parsed pieces, so a value is only ever data: text inside it that looks like a
//! placeholder is never expanded, and it cannot leave the message it was put into.

use serde_json::Value;
use tollgate_core::{ConfigError, ConfigPath};

use crate::variables::{Values, Variables};

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    /// The index of the variable in the endpoint's `Variables`.
    Variable(usize),
}

impl Template {
    /// Parses `text`. Every `{{` must open a placeholder `{{name}}` (spaces inside allowed) naming a declared
    /// variable: a typo is a config error rather than literal braces sent to the model.
    pub fn parse(text: &str, variables: &Variables, at: &ConfigPath) -> Result<Template, ConfigError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let (before, opened) = rest.split_at(start);
            if !before.is_empty() {
                pieces.push(Piece::Text(before.to_string()));
            }
            let inner = opened.get(2..).unwrap_or_default();
            let Some(end) = inner.find("}}") else {
                return Err(at.error(format!("a placeholder is never closed: {:?}", preview(opened))));
            };
            let (name, after) = inner.split_at(end);
            let name = name.trim();
            let Some(index) = variables.index_of(name) else {
                let message = if crate::variables::is_identifier(name) {
                    format!("{{{{{name}}}}} names no declared variable")
                } else {
                    format!("{:?} is not a placeholder: write {{{{variable_name}}}}", preview(opened))
                };
                return Err(at.error(message));
            };
            pieces.push(Piece::Variable(index));
            rest = after.get(2..).unwrap_or_default();
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// The template with each placeholder replaced by its value: strings as they are, other JSON values
    /// as their JSON text, an absent optional variable as nothing.
    pub fn render(&self, values: &Values) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Variable(index) => match values.get(*index) {
                    None => {}
                    Some(Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                },
            }
        }
        out
    }

    /// The indices of the variables this template uses.
    pub fn variables(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Variable(index) => Some(*index),
            Piece::Text(_) => None,
        })
    }
}

/// The start of a template fragment, for error messages: enough to find it, never a whole prompt.
fn preview(text: &str) -> String {
    text.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;
    use crate::config::RawVariable;

    fn vars(names: &[&str]) -> Variables {
        let raw = names
            .iter()
            .map(|n| {
                (n.to_string(), serde_json::from_value::<RawVariable>(json!({"type": "string"})).unwrap())
            })
            .collect();
        Variables::compile(raw, &ConfigPath::root()).unwrap()
    }

    fn parse(text: &str) -> Result<Template, String> {
        Template::parse(text, &vars(&["name", "topic"]), &ConfigPath::root().field("content"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn placeholders_are_found_with_or_without_inner_spaces() {
        let t = parse("Hi {{name}}, about {{ topic }}.{{name}}").unwrap();
        let values = Values(vec![Some(json!("Ada")), Some(json!("cats"))]);
        assert_eq!(t.render(&values), "Hi Ada, about cats.Ada");
        assert_eq!(t.variables().collect::<Vec<_>>(), vec![0, 1, 0]);
    }

    #[test]
    fn text_without_placeholders_and_single_braces_stay_literal() {
        let t = parse("Reply as {\"a\": 1} } {").unwrap();
        assert_eq!(t.render(&Values::default()), "Reply as {\"a\": 1} } {");
    }

    #[test]
    fn undeclared_unclosed_and_malformed_placeholders_are_config_errors() {
        assert_eq!(parse("{{nmae}}").unwrap_err(), "content: {{nmae}} names no declared variable");
        assert!(parse("Hi {{name").unwrap_err().starts_with("content: a placeholder is never closed"));
        assert!(parse("{{na me}}").unwrap_err().contains("is not a placeholder"));
        assert!(parse("{{}}").unwrap_err().contains("is not a placeholder"));
    }

    #[test]
    fn absent_optional_values_render_as_nothing() {
        let t = parse("[{{name}}]").unwrap();
        assert_eq!(t.render(&Values(vec![None, None])), "[]");
    }
}

use std::collections::BTreeMap;

use tollgate_core::{ConfigError, ConfigPath};

use super::{check_value, Variable, VariableKind, Variables};
use crate::config::{RawVariable, RawVariableType};

impl Variables {
    /// Compiles `variables` (already ordered by name); errors name `<at>.<variable>.<setting>`.
    pub fn compile(raw: BTreeMap<String, RawVariable>, at: &ConfigPath) -> Result<Variables, ConfigError> {
        let mut list = Vec::with_capacity(raw.len());
        for (name, variable) in raw {
            list.push(compile_variable(name, variable, at)?);
        }
        Ok(Variables { list })
    }
}

/// Whether `name` can appear in a `{{name}}` placeholder: ASCII letters, digits and `_`, not starting
/// with a digit.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn compile_variable(name: String, raw: RawVariable, at: &ConfigPath) -> Result<Variable, ConfigError> {
    let at = at.field(&name);
    if !is_identifier(&name) {
        return Err(at.error("a variable name is ASCII letters, digits and '_', not starting with a digit"));
    }
    let kind = raw.kind;
    let lengths_apply = matches!(kind, RawVariableType::String | RawVariableType::Array);
    let range_applies = matches!(kind, RawVariableType::Number | RawVariableType::Integer);
    for (setting, present, applies, to) in [
        ("min_length", raw.min_length.is_some(), lengths_apply, "string and array"),
        ("max_length", raw.max_length.is_some(), lengths_apply, "string and array"),
        ("minimum", raw.minimum.is_some(), range_applies, "number and integer"),
        ("maximum", raw.maximum.is_some(), range_applies, "number and integer"),
        ("values", raw.values.is_some(), kind == RawVariableType::Enum, "enum"),
        ("items", raw.items.is_some(), kind == RawVariableType::Array, "array"),
    ] {
        if present && !applies {
            return Err(at.field(setting).error(format!("only applies to {to} variables")));
        }
    }
    if let (Some(min), Some(max)) = (raw.min_length, raw.max_length) {
        if max < min {
            return Err(at.field("max_length").error("must be >= min_length"));
        }
    }
    for (setting, bound) in [("minimum", raw.minimum), ("maximum", raw.maximum)] {
        if bound.is_some_and(|b| !b.is_finite()) {
            return Err(at.field(setting).error("must be a finite number"));
        }
    }
    if let (Some(min), Some(max)) = (raw.minimum, raw.maximum) {
        if max < min {
            return Err(at.field("maximum").error("must be >= minimum"));
        }
    }
    let kind = match kind {
        RawVariableType::String => {
            VariableKind::String { min_length: raw.min_length, max_length: raw.max_length }
        }
        RawVariableType::Number | RawVariableType::Integer => VariableKind::Number {
            integer: kind == RawVariableType::Integer,
            minimum: raw.minimum,
            maximum: raw.maximum,
        },
        RawVariableType::Boolean => VariableKind::Boolean,
        RawVariableType::Enum => {
            let values = raw.values.unwrap_or_default();
            if values.is_empty() {
                return Err(at.field("values").error("an enum variable needs at least one value"));
            }
            if let Some((i, value)) =
                values.iter().enumerate().find(|(i, v)| values.iter().take(*i).any(|w| w == *v))
            {
                return Err(at.field("values").index(i).error(format!("{value:?} is listed twice")));
            }
            VariableKind::Enum { values }
        }
        RawVariableType::Array => {
            let Some(items) = raw.items else {
                return Err(at.field("items").error("an array variable needs its item type"));
            };
            VariableKind::Array { items, min_items: raw.min_length, max_items: raw.max_length }
        }
    };
    if let Some(default) = &raw.default {
        if raw.required {
            return Err(at.field("default").error("a required variable never uses its default"));
        }
        let mut errors = Vec::new();
        check_value(&kind, default, "", &mut errors);
        if let Some(first) = errors.first() {
            // An array item reports its field as `[i]`: `default: item [2] must be a string, not a number`.
            let message = if first.field.is_empty() {
                first.message.clone()
            } else {
                format!("item {} {}", first.field, first.message)
            };
            return Err(at.field("default").error(message));
        }
    }
    Ok(Variable { name, required: raw.required, kind, default: raw.default, description: raw.description })
}

//! Checking an instance against a compiled schema node. Recursion follows the schema, not the instance,
//! so a deeply nested answer from a model cannot run the stack out.

use serde_json::Value;

use super::{JsonType, Node};
use crate::variables::{is_integer, type_name};

pub(super) fn node(node: &Node, instance: &Value, pointer: &str, errors: &mut Vec<String>, limit: usize) {
    if errors.len() >= limit {
        return;
    }
    let mut fail = |message: String| {
        if errors.len() < limit {
            let at = if pointer.is_empty() { "(root)" } else { pointer };
            errors.push(format!("{at}: {message}"));
        }
    };
    if !node.types.is_empty() && !node.types.iter().any(|t| has_type(*t, instance)) {
        let names: Vec<&str> = node.types.iter().map(|t| type_label(*t)).collect();
        return fail(format!("must be {}, not {}", names.join(" or "), type_name(instance)));
    }
    if let Some(allowed) = &node.allowed {
        if !allowed.iter().any(|a| same_value(a, instance)) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            fail(format!("must be one of {}", list.join(", ")));
        }
    }
    match instance {
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(min) = node.min_length.filter(|min| chars < *min) {
                fail(format!("must be at least {min} characters long"));
            }
            if let Some(max) = node.max_length.filter(|max| chars > *max) {
                fail(format!("must be at most {max} characters long"));
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = node.minimum.filter(|min| n < *min) {
                fail(format!("must be >= {min}"));
            }
            if let Some(max) = node.maximum.filter(|max| n > *max) {
                fail(format!("must be <= {max}"));
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = node.min_items.filter(|min| len < *min) {
                fail(format!("must have at least {min} items"));
            }
            if let Some(max) = node.max_items.filter(|max| len > *max) {
                fail(format!("must have at most {max} items"));
            }
            if let Some(item_schema) = &node.items {
                for (i, item) in items.iter().enumerate() {
                    self::node(item_schema, item, &format!("{pointer}/{i}"), errors, limit);
                }
            }
        }
        Value::Object(object) => {
            for name in &node.required {
                if !object.contains_key(name) {
                    fail(format!("is missing the required property {name:?}"));
                }
            }
            if !node.additional_properties {
                for key in object.keys() {
                    if !node.properties.iter().any(|(name, _)| name == key) {
                        fail(format!("has the property {key:?}, which the schema does not allow"));
                    }
                }
            }
            for (name, schema) in &node.properties {
                if let Some(value) = object.get(name) {
                    self::node(schema, value, &format!("{pointer}/{}", escape(name)), errors, limit);
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn has_type(t: JsonType, instance: &Value) -> bool {
    match t {
        JsonType::Object => instance.is_object(),
        JsonType::Array => instance.is_array(),
        JsonType::String => instance.is_string(),
        JsonType::Number => instance.is_number(),
        JsonType::Integer => instance.is_number() && is_integer(instance),
        JsonType::Boolean => instance.is_boolean(),
        JsonType::Null => instance.is_null(),
    }
}

fn type_label(t: JsonType) -> &'static str {
    match t {
        JsonType::Object => "an object",
        JsonType::Array => "an array",
        JsonType::String => "a string",
        JsonType::Number => "a number",
        JsonType::Integer => "an integer",
        JsonType::Boolean => "a boolean",
        JsonType::Null => "null",
    }
}

/// JSON Schema equality: numbers compare by value (`1` equals `1.0`), containers element by element.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// JSON Pointer escaping of a property name (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

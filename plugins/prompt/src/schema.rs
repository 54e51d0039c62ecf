//! The JSON Schema subset Tollgate enforces on JSON output: `type` (one or a list, `null` included),
//! `properties`, `required`, `additionalProperties` (a boolean), `enum`, `const`, `items` (one schema),
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `minimum`/`maximum`. Annotations (`title`,
//! `description`, `default`, `examples`, `format`, `$schema`, `$id`, `$comment`) are kept and not enforced.
//!
//! A subset rather than the `jsonschema` crate: that crate (0.33, default features off) adds about 2.4 MB to
//! the wasm module (regex engines, IDNA tables, big-number fractions) for keywords structured-output
//! schemas rarely use. Any other keyword is a config error, so an operator never believes a constraint
//! is checked when it is not.

mod validate;

use serde_json::Value;
use tollgate_core::{ConfigError, ConfigPath};

/// Keywords accepted and ignored: they describe, they do not constrain.
const ANNOTATIONS: &[&str] =
    &["title", "description", "default", "examples", "format", "$schema", "$id", "$comment", "deprecated"];

/// A compiled schema, with the JSON it came from (sent to the provider and put in the OpenAPI document).
#[derive(Clone, Debug, PartialEq)]
pub struct JsonSchema {
    source: Value,
    root: Node,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Node {
    /// Empty: any type.
    types: Vec<JsonType>,
    properties: Vec<(String, Node)>,
    required: Vec<String>,
    additional_properties: bool,
    allowed: Option<Vec<Value>>,
    items: Option<Box<Node>>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonType {
    Object,
    Array,
    String,
    Number,
    Integer,
    Boolean,
    Null,
}

impl JsonType {
    fn parse(name: &str) -> Option<JsonType> {
        Some(match name {
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "string" => JsonType::String,
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "boolean" => JsonType::Boolean,
            "null" => JsonType::Null,
            _ => return None,
        })
    }
}

impl JsonSchema {
    /// Compiles a schema; keywords outside the subset are errors naming their path below `at`.
    pub fn compile(source: Value, at: &ConfigPath) -> Result<JsonSchema, ConfigError> {
        let root = compile_node(&source, at)?;
        Ok(JsonSchema { source, root })
    }

    /// The schema as written.
    pub fn as_json(&self) -> &Value {
        &self.source
    }

    /// Whether the root accepts only objects, as OpenAI's structured outputs require of a response schema.
    pub fn is_object_schema(&self) -> bool {
        self.root.types == [JsonType::Object]
    }

    /// Whether OpenAI's strict mode accepts the schema: every object closed (`additionalProperties: false`)
    /// with every property required. Sending `strict: true` otherwise would get the request refused.
    pub fn is_strict_compatible(&self) -> bool {
        fn strict(node: &Node) -> bool {
            let object = !node.types.contains(&JsonType::Object)
                || (!node.additional_properties
                    && node.properties.iter().all(|(name, _)| node.required.contains(name)));
            object
                && node.properties.iter().all(|(_, n)| strict(n))
                && node.items.as_deref().is_none_or(strict)
        }
        strict(&self.root)
    }

    /// Every way `instance` breaks the schema, as `"<JSON pointer>: <problem>"` (`"(root)"` for the top),
    /// at most `limit` of them.
    pub fn validate(&self, instance: &Value, limit: usize) -> Vec<String> {
        let mut errors = Vec::new();
        validate::node(&self.root, instance, "", &mut errors, limit);
        errors
    }
}

fn compile_node(schema: &Value, at: &ConfigPath) -> Result<Node, ConfigError> {
    let Value::Object(map) = schema else {
        return Err(at.error("a schema must be a JSON object"));
    };
    let mut node = Node { additional_properties: true, ..Node::default() };
    for (key, value) in map {
        let here = at.field(key);
        match key.as_str() {
            "type" => node.types = compile_types(value, &here)?,
            "properties" => {
                let Value::Object(properties) = value else {
                    return Err(here.error("must be an object of schemas"));
                };
                for (name, property) in properties {
                    node.properties.push((name.clone(), compile_node(property, &here.field(name))?));
                }
                // By name, so reports come out in one order whether or not serde_json preserves key order.
                node.properties.sort_by(|a, b| a.0.cmp(&b.0));
            }
            "required" => node.required = string_list(value, &here)?,
            "additionalProperties" => {
                node.additional_properties = value
                    .as_bool()
                    .ok_or_else(|| here.error("only true or false is supported (a schema here is not)"))?;
            }
            "enum" => {
                let values = value.as_array().filter(|v| !v.is_empty());
                node.allowed = Some(values.cloned().ok_or_else(|| here.error("must be a non-empty array"))?);
            }
            "const" => node.allowed = Some(vec![value.clone()]),
            "items" => node.items = Some(Box::new(compile_node(value, &here)?)),
            "minLength" => node.min_length = Some(count(value, &here)?),
            "maxLength" => node.max_length = Some(count(value, &here)?),
            "minItems" => node.min_items = Some(count(value, &here)?),
            "maxItems" => node.max_items = Some(count(value, &here)?),
            "minimum" => node.minimum = Some(number(value, &here)?),
            "maximum" => node.maximum = Some(number(value, &here)?),
            other if ANNOTATIONS.contains(&other) => {}
            other => {
                return Err(here.error(format!(
                    "Tollgate does not enforce the JSON Schema keyword {other:?}; the supported keywords are \
                     type, properties, required, additionalProperties, enum, const, items, minLength, \
                     maxLength, minItems, maxItems, minimum, maximum"
                )));
            }
        }
    }
    Ok(node)
}

fn compile_types(value: &Value, at: &ConfigPath) -> Result<Vec<JsonType>, ConfigError> {
    let names: Vec<&Value> = match value {
        Value::Array(list) if !list.is_empty() => list.iter().collect(),
        Value::String(_) => vec![value],
        _ => return Err(at.error("must be a type name or a non-empty list of them")),
    };
    names
        .into_iter()
        .map(|name| {
            name.as_str()
                .and_then(JsonType::parse)
                .ok_or_else(|| at.error(format!("{name} is not a JSON Schema type")))
        })
        .collect()
}

fn string_list(value: &Value, at: &ConfigPath) -> Result<Vec<String>, ConfigError> {
    let list = value.as_array().ok_or_else(|| at.error("must be an array of strings"))?;
    list.iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| at.error("must be an array of strings")))
        .collect()
}

fn count(value: &Value, at: &ConfigPath) -> Result<u64, ConfigError> {
    value.as_u64().ok_or_else(|| at.error("must be a non-negative integer"))
}

fn number(value: &Value, at: &ConfigPath) -> Result<f64, ConfigError> {
    value.as_f64().filter(|n| n.is_finite()).ok_or_else(|| at.error("must be a number"))
}

#[cfg(test)]
mod tests;

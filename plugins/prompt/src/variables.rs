//! An endpoint's declared variables, and the validation of a request body against them: every problem is
//! collected, so a client fixes its request in one round trip.

mod compile;

pub(crate) use compile::is_identifier;

use serde_json::{Map, Value};

use crate::config::ItemType;
use crate::error::{FieldError, PromptError};

/// One declared variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    pub kind: VariableKind,
    /// Already checked against `kind`.
    pub default: Option<Value>,
    pub description: Option<String>,
}

/// A variable's type and its bounds.
#[derive(Clone, Debug, PartialEq)]
pub enum VariableKind {
    /// Lengths are in characters (Unicode scalar values), not bytes.
    String {
        min_length: Option<u64>,
        max_length: Option<u64>,
    },
    Number {
        integer: bool,
        minimum: Option<f64>,
        maximum: Option<f64>,
    },
    Boolean,
    Enum {
        values: Vec<String>,
    },
    Array {
        items: ItemType,
        min_items: Option<u64>,
        max_items: Option<u64>,
    },
}

/// An endpoint's variables, ordered by name; templates refer to them by index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variables {
    list: Vec<Variable>,
}

/// A request's variable values, validated, defaults applied; indexed like `Variables`. `None` is an optional
/// variable the client left out and that has no default: it renders as empty text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Values(pub(crate) Vec<Option<Value>>);

impl Values {
    pub(crate) fn get(&self, index: usize) -> Option<&Value> {
        self.0.get(index).and_then(Option::as_ref)
    }
}

impl Variables {
    pub fn iter(&self) -> impl Iterator<Item = &Variable> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|v| v.name == name)
    }

    /// Validates a request body (a JSON object of variables; an empty body counts as `{}`) and applies
    /// defaults. Unknown variables, missing required ones and every type or bound violation are reported
    /// together: unknown ones first, then declared ones by name.
    pub fn validate(&self, body: &[u8]) -> Result<Values, PromptError> {
        let invalid = |message: String| PromptError::InvalidVariables(vec![FieldError::new("", message)]);
        let object = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(object)) => object,
                Ok(_) => return Err(invalid("the body must be a JSON object of variables".into())),
                Err(e) => return Err(invalid(format!("the body is not valid JSON: {e}"))),
            }
        };
        self.validate_object(object)
    }

    /// `validate` for a body already parsed into an object.
    pub fn validate_object(&self, mut object: Map<String, Value>) -> Result<Values, PromptError> {
        let mut errors = Vec::new();
        for name in object.keys() {
            if self.index_of(name).is_none() {
                errors.push(FieldError::new(name.clone(), self.unknown_message()));
            }
        }
        let mut values = Vec::with_capacity(self.list.len());
        for variable in &self.list {
            match object.remove(&variable.name) {
                Some(value) => {
                    check_value(&variable.kind, &value, &variable.name, &mut errors);
                    values.push(Some(value));
                }
                None if variable.required => {
                    errors.push(FieldError::new(variable.name.clone(), "is required"));
                    values.push(None);
                }
                None => values.push(variable.default.clone()),
            }
        }
        if errors.is_empty() {
            Ok(Values(values))
        } else {
            Err(PromptError::InvalidVariables(errors))
        }
    }

    fn unknown_message(&self) -> String {
        if self.list.is_empty() {
            return "unknown variable; this endpoint takes none".into();
        }
        let names: Vec<&str> = self.list.iter().map(|v| v.name.as_str()).collect();
        format!("unknown variable; this endpoint takes: {}", names.join(", "))
    }
}

/// Checks one value against a kind, pushing a `FieldError` per problem found under `field`.
pub(crate) fn check_value(kind: &VariableKind, value: &Value, field: &str, errors: &mut Vec<FieldError>) {
    let mut fail = |message: String| errors.push(FieldError::new(field, message));
    match kind {
        VariableKind::String { min_length, max_length } => match value.as_str() {
            None => fail(format!("must be a string, not {}", type_name(value))),
            Some(s) => {
                let chars = s.chars().count() as u64;
                if let Some(min) = min_length.filter(|min| chars < *min) {
                    fail(format!("must be at least {min} characters long"));
                }
                if let Some(max) = max_length.filter(|max| chars > *max) {
                    fail(format!("must be at most {max} characters long"));
                }
            }
        },
        VariableKind::Number { integer, minimum, maximum } => {
            let Some(n) = value.as_f64() else {
                let wanted = if *integer { "an integer" } else { "a number" };
                return fail(format!("must be {wanted}, not {}", type_name(value)));
            };
            if *integer && !is_integer(value) {
                return fail("must be an integer".into());
            }
            if let Some(min) = minimum.filter(|min| n < *min) {
                fail(format!("must be >= {min}"));
            }
            if let Some(max) = maximum.filter(|max| n > *max) {
                fail(format!("must be <= {max}"));
            }
        }
        VariableKind::Boolean => {
            if !value.is_boolean() {
                fail(format!("must be a boolean, not {}", type_name(value)));
            }
        }
        VariableKind::Enum { values } => {
            if !value.as_str().is_some_and(|s| values.iter().any(|v| v == s)) {
                fail(format!("must be one of: {}", values.join(", ")));
            }
        }
        VariableKind::Array { items, min_items, max_items } => {
            let Some(array) = value.as_array() else {
                return fail(format!("must be an array, not {}", type_name(value)));
            };
            let len = array.len() as u64;
            if let Some(min) = min_items.filter(|min| len < *min) {
                fail(format!("must have at least {min} items"));
            }
            if let Some(max) = max_items.filter(|max| len > *max) {
                fail(format!("must have at most {max} items"));
            }
            for (i, item) in array.iter().enumerate() {
                if !item_matches(*items, item) {
                    let name = items.name();
                    let article = if name == "integer" { "an" } else { "a" };
                    errors.push(FieldError::new(
                        format!("{field}[{i}]"),
                        format!("must be {article} {name}, not {}", type_name(item)),
                    ));
                }
            }
        }
    }
}

fn item_matches(items: ItemType, item: &Value) -> bool {
    match items {
        ItemType::String => item.is_string(),
        ItemType::Number => item.is_number(),
        ItemType::Integer => is_integer(item),
        ItemType::Boolean => item.is_boolean(),
    }
}

/// JSON Schema's notion: `3` and `3.0` are integers, `3.5` is not.
pub(crate) fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;

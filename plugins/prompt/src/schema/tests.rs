#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::{json, Value};
use tollgate_core::ConfigPath;

use super::JsonSchema;

fn schema(source: Value) -> Result<JsonSchema, String> {
    JsonSchema::compile(source, &ConfigPath::root().field("schema")).map_err(|e| e.to_string())
}

fn errors(source: Value, instance: Value) -> Vec<String> {
    schema(source).unwrap().validate(&instance, 10)
}

fn person() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Person",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 5, "description": "Given name"},
            "age": {"type": ["integer", "null"], "minimum": 0, "maximum": 150},
            "role": {"enum": ["admin", "user"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
            "a/b": {"const": 1}
        },
        "required": ["name", "age"],
        "additionalProperties": false
    })
}

#[test]
fn a_matching_instance_passes() {
    assert!(errors(person(), json!({"name": "Ada", "age": 36, "role": "admin", "tags": ["x"], "a/b": 1.0}))
        .is_empty());
    assert!(errors(person(), json!({"name": "Ada", "age": null})).is_empty());
    assert!(errors(person(), json!({"name": "Ada", "age": 36.0})).is_empty(), "36.0 is an integer");
}

#[test]
fn each_keyword_reports_its_violation_with_a_pointer() {
    let found = errors(
        person(),
        json!({"name": "", "age": 1.5, "role": "root", "tags": ["x", 2, "z"], "extra": 1, "a/b": 2}),
    );
    assert_eq!(
        found,
        vec![
            "(root): has the property \"extra\", which the schema does not allow",
            "/a~1b: must be one of 1",
            "/age: must be an integer or null, not a number",
            "/name: must be at least 1 characters long",
            "/role: must be one of \"admin\", \"user\"",
            "/tags: must have at most 2 items",
            "/tags/1: must be a string, not a number",
        ]
    );
    assert_eq!(
        errors(person(), json!({"age": 200})),
        vec!["(root): is missing the required property \"name\"", "/age: must be <= 150"]
    );
    assert_eq!(errors(person(), json!([1])), vec!["(root): must be an object, not an array"]);
    assert_eq!(
        errors(person(), json!({"name": "toolong", "age": -1})),
        vec!["/age: must be >= 0", "/name: must be at most 5 characters long"]
    );
}

#[test]
fn reports_stop_at_the_limit() {
    let schema = schema(json!({"type": "array", "items": {"type": "string"}})).unwrap();
    let many: Vec<u32> = (0..100).collect();
    assert_eq!(schema.validate(&json!(many), 3).len(), 3);
}

#[test]
fn open_objects_and_untyped_schemas_accept_anything_else() {
    assert!(errors(json!({"type": "object"}), json!({"anything": [1, {"deep": true}]})).is_empty());
    assert!(errors(json!({}), json!("whatever")).is_empty());
    assert!(errors(json!({"type": "number", "minimum": 0.5}), json!(0.5)).is_empty());
}

#[test]
fn unsupported_keywords_and_malformed_schemas_are_config_errors() {
    assert!(schema(json!({"type": "string", "pattern": "^a"}))
        .unwrap_err()
        .starts_with("schema.pattern: Tollgate does not enforce the JSON Schema keyword \"pattern\""));
    assert!(schema(json!({"properties": {"a": {"items": {"$ref": "#/x"}}}}))
        .unwrap_err()
        .starts_with("schema.properties.a.items.$ref: Tollgate does not enforce"));
    assert_eq!(
        schema(json!({"type": "text"})).unwrap_err(),
        "schema.type: \"text\" is not a JSON Schema type"
    );
    assert_eq!(
        schema(json!({"type": []})).unwrap_err(),
        "schema.type: must be a type name or a non-empty list of them"
    );
    assert_eq!(
        schema(json!({"additionalProperties": {"type": "string"}})).unwrap_err(),
        "schema.additionalProperties: only true or false is supported (a schema here is not)"
    );
    assert_eq!(schema(json!({"required": [1]})).unwrap_err(), "schema.required: must be an array of strings");
    assert_eq!(schema(json!({"enum": []})).unwrap_err(), "schema.enum: must be a non-empty array");
    assert_eq!(
        schema(json!({"minLength": -1})).unwrap_err(),
        "schema.minLength: must be a non-negative integer"
    );
    assert_eq!(schema(json!({"maximum": "9"})).unwrap_err(), "schema.maximum: must be a number");
    assert_eq!(schema(json!(true)).unwrap_err(), "schema: a schema must be a JSON object");
}

#[test]
fn strict_compatibility_follows_openai_rules() {
    assert!(!schema(person()).unwrap().is_strict_compatible(), "role and tags are optional");
    let strict = json!({
        "type": "object",
        "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"], "additionalProperties": false
        }}},
        "required": ["items"],
        "additionalProperties": false
    });
    assert!(schema(strict.clone()).unwrap().is_strict_compatible());
    let mut open_inner = strict;
    open_inner["properties"]["items"]["items"]["additionalProperties"] = json!(true);
    assert!(!schema(open_inner).unwrap().is_strict_compatible());
}

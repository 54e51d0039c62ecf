#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use serde_json::{json, Value};

use crate::testing::{endpoint_of, with_endpoint};
use crate::{FieldError, PromptConfig, PromptError, Values};

/// An endpoint declaring one variable of every kind; only `text` is required.
fn config() -> PromptConfig {
    with_endpoint(json!({
        "path": "/all",
        "model": "m",
        "variables": {
            "text": {"type": "string", "required": true, "min_length": 2, "max_length": 5},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
            "loud": {"type": "boolean"},
            "lang": {"type": "enum", "values": ["en", "fr"], "default": "en"},
            "tags": {"type": "array", "items": "string", "min_length": 1, "max_length": 2}
        },
        "versions": [{"name": "v", "messages": [{"role": "user", "content": "{{text}}"}]}]
    }))
    .unwrap()
}

fn validate(body: &str) -> Result<Values, Vec<(String, String)>> {
    let config = config();
    endpoint_of(&config).variables.validate(body.as_bytes()).map_err(|e| match e {
        PromptError::InvalidVariables(fields) => fields.into_iter().map(|f| (f.field, f.message)).collect(),
        other => panic!("{other:?}"),
    })
}

/// The problems a body with one field set to `value` (besides a valid `text`) has.
fn problems(name: &str, value: Value) -> Vec<(String, String)> {
    let mut body = json!({"text": "abc"});
    body[name] = value;
    validate(&body.to_string()).err().unwrap_or_default()
}

fn one(field: &str, message: &str) -> Vec<(String, String)> {
    vec![(field.to_string(), message.to_string())]
}

/// Values by variable name (variables are ordered by name: count, lang, loud, ratio, tags, text).
fn value(values: &Values, index: usize) -> Option<&Value> {
    values.get(index)
}

#[test]
fn a_valid_body_passes_and_defaults_fill_the_gaps() {
    let values = validate(r#"{"text": "héllo", "loud": true, "tags": ["a"]}"#).unwrap();
    assert_eq!(value(&values, 0), Some(&json!(3)), "count's default");
    assert_eq!(value(&values, 1), Some(&json!("en")), "lang's default");
    assert_eq!(value(&values, 2), Some(&json!(true)));
    assert_eq!(value(&values, 3), None, "an optional variable without default stays absent");
    assert_eq!(value(&values, 5), Some(&json!("héllo")), "5 characters, 6 bytes: lengths count characters");
}

#[test]
fn the_body_must_be_a_json_object() {
    assert_eq!(validate("[1]").unwrap_err(), one("", "the body must be a JSON object of variables"));
    assert_eq!(validate("\"text\"").unwrap_err(), one("", "the body must be a JSON object of variables"));
    let invalid = validate(r#"{"text": "#).unwrap_err();
    assert_eq!(invalid.len(), 1);
    assert!(invalid[0].1.starts_with("the body is not valid JSON: "), "{invalid:?}");
}

#[test]
fn an_empty_body_is_an_empty_object() {
    assert_eq!(validate("  \n").unwrap_err(), one("text", "is required"));
    let config = with_endpoint(json!({"path": "/p", "model": "m",
        "versions": [{"name": "v", "messages": [{"role": "user", "content": "hi"}]}]}))
    .unwrap();
    assert_eq!(endpoint_of(&config).variables.validate(b"").unwrap(), Values(vec![]));
    let unknown = endpoint_of(&config).variables.validate(br#"{"x": 1}"#).unwrap_err();
    assert_eq!(
        unknown,
        PromptError::InvalidVariables(vec![FieldError::new(
            "x",
            "unknown variable; this endpoint takes none"
        )])
    );
}

#[test]
fn unknown_and_missing_variables_are_reported() {
    assert_eq!(
        validate(r#"{"txet": "abc"}"#).unwrap_err(),
        vec![
            (
                "txet".into(),
                "unknown variable; this endpoint takes: count, lang, loud, ratio, tags, text".into()
            ),
            ("text".into(), "is required".into()),
        ]
    );
}

#[test]
fn strings_are_checked_for_type_and_length_in_characters() {
    assert_eq!(problems("text", json!(12)), one("text", "must be a string, not a number"));
    assert_eq!(problems("text", json!("a")), one("text", "must be at least 2 characters long"));
    assert_eq!(problems("text", json!("abcdef")), one("text", "must be at most 5 characters long"));
    assert_eq!(problems("text", json!("ééééé")), vec![], "5 characters in 10 bytes");
    assert_eq!(problems("text", json!(null)), one("text", "must be a string, not null"));
}

#[test]
fn numbers_are_checked_for_type_and_range() {
    assert_eq!(problems("ratio", json!("0.5")), one("ratio", "must be a number, not a string"));
    assert_eq!(problems("ratio", json!(-0.5)), one("ratio", "must be >= 0"));
    assert_eq!(problems("ratio", json!(1.5)), one("ratio", "must be <= 1"));
    assert_eq!(problems("ratio", json!(1)), vec![]);
}

#[test]
fn integers_refuse_fractions_but_take_whole_floats() {
    assert_eq!(problems("count", json!(2.5)), one("count", "must be an integer"));
    assert_eq!(problems("count", json!(true)), one("count", "must be an integer, not a boolean"));
    assert_eq!(problems("count", json!(0)), one("count", "must be >= 1"));
    assert_eq!(problems("count", json!(11)), one("count", "must be <= 10"));
    assert_eq!(problems("count", json!(4.0)), vec![]);
}

#[test]
fn booleans_and_enums_are_checked() {
    assert_eq!(problems("loud", json!("true")), one("loud", "must be a boolean, not a string"));
    assert_eq!(problems("lang", json!("de")), one("lang", "must be one of: en, fr"));
    assert_eq!(problems("lang", json!(["en"])), one("lang", "must be one of: en, fr"));
    assert_eq!(problems("lang", json!("fr")), vec![]);
}

#[test]
fn arrays_are_checked_for_type_count_and_every_item() {
    assert_eq!(problems("tags", json!("a")), one("tags", "must be an array, not a string"));
    assert_eq!(problems("tags", json!([])), one("tags", "must have at least 1 items"));
    assert_eq!(
        problems("tags", json!(["a", 2, {"b": 1}])),
        vec![
            ("tags".into(), "must have at most 2 items".into()),
            ("tags[1]".into(), "must be a string, not a number".into()),
            ("tags[2]".into(), "must be a string, not an object".into()),
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let body = json!({"ratio": 3, "count": "x", "loud": 1, "lang": "de", "tags": [1], "extra": true});
    let fields: Vec<String> = validate(&body.to_string()).unwrap_err().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["extra", "count", "lang", "loud", "ratio", "tags[0]", "text"]);
}

#[test]
fn the_error_is_a_400_invalid_variables_listing_the_fields() {
    let config = config();
    let error = endpoint_of(&config).variables.validate(br#"{"lang": "de"}"#).unwrap_err();
    assert_eq!((error.status(), error.code()), (400, "invalid_variables"));
    let body = error.to_json();
    assert_eq!(body["error"]["fields"][0], json!({"field": "lang", "message": "must be one of: en, fr"}));
    assert_eq!(body["error"]["fields"][1], json!({"field": "text", "message": "is required"}));
}

#[test]
fn endpoints_are_found_by_method_and_path() {
    let config = config();
    assert!(config.endpoints.find("POST", "/all").is_some());
    assert!(config.endpoints.find("POST", "/all?debug=1").is_some(), "the query string is ignored");
    assert!(config.endpoints.find("POST", "/all/").is_none());
    assert!(config.endpoints.find("PUT", "/all").is_none());
    assert!(config.endpoints.route("POST", "/other").unwrap().is_none());
    assert_eq!(
        config.endpoints.route("GET", "/all").unwrap_err(),
        PromptError::MethodNotAllowed { method: "GET".into(), allowed: vec!["POST".into()] }
    );
}

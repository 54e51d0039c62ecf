#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use crate::testing::{compile, endpoint_of, extractor, summarizer, with_endpoint};
use crate::{Output, DEFAULT_OPENAPI_PATH};

/// The summarizer with `edit` merged into its top level (`null` removes a field).
fn summarizer_with(edit: Value) -> Result<crate::PromptConfig, String> {
    let mut endpoint = summarizer();
    for (key, value) in edit.as_object().unwrap() {
        if value.is_null() {
            endpoint.as_object_mut().unwrap().remove(key);
        } else {
            endpoint[key] = value.clone();
        }
    }
    with_endpoint(endpoint)
}

/// The summarizer with one more variable `v`.
fn variable(schema: Value) -> String {
    let mut endpoint = summarizer();
    endpoint["variables"]["v"] = schema;
    with_endpoint(endpoint).map(|_| String::new()).unwrap_or_else(|e| e)
}

#[test]
fn an_empty_section_compiles_with_defaults() {
    let config = compile(json!({})).unwrap();
    assert!(config.endpoints.is_empty());
    assert!(config.decorators.is_empty());
    assert_eq!(config.openapi.path, DEFAULT_OPENAPI_PATH);
}

#[test]
fn the_summarizer_compiles_with_its_defaults() {
    let config = with_endpoint(summarizer()).unwrap();
    let endpoint = endpoint_of(&config);
    assert_eq!((endpoint.method.as_str(), endpoint.path.as_str()), ("POST", "/summarize"));
    assert_eq!(endpoint.operation_id, "post_summarize");
    assert_eq!(endpoint.output, Output::Text);
    assert_eq!(endpoint.max_tokens, Some(300));
    let names: Vec<&str> = endpoint.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["style", "text", "words"], "variables are ordered by name");
    assert_eq!(endpoint.versions.iter().next().unwrap().weight, 1, "weight defaults to 1");
}

#[test]
fn endpoint_mistakes_name_their_path() {
    let e = |edit: Value| summarizer_with(edit).unwrap_err();
    assert_eq!(e(json!({"path": "summarize"})), "prompt.endpoints[0].path: must start with '/'");
    assert_eq!(e(json!({"path": "/a?b=1"})), "prompt.endpoints[0].path: must not contain '?'");
    assert_eq!(e(json!({"path": "/a/{id}"})), "prompt.endpoints[0].path: must not contain '{'");
    assert!(e(json!({"method": "GET"}))
        .starts_with("prompt.endpoints[0].method: \"GET\" cannot carry the variables' JSON body"));
    assert_eq!(e(json!({"model": " "})), "prompt.endpoints[0].model: must not be empty");
    assert_eq!(e(json!({"temperature": 2.5})), "prompt.endpoints[0].temperature: must be between 0 and 2");
    assert_eq!(e(json!({"temperature": -0.1})), "prompt.endpoints[0].temperature: must be between 0 and 2");
    assert_eq!(e(json!({"max_tokens": 0})), "prompt.endpoints[0].max_tokens: must be > 0");
    assert!(e(json!({"max_tokens": -1})).starts_with("prompt.endpoints[0].max_tokens: invalid value"));
    assert!(e(json!({"model": null})).starts_with("prompt.endpoints[0]: missing field `model`"));
    assert!(e(json!({"versions": null})).starts_with("prompt.endpoints[0]: missing field `versions`"));
    assert!(e(json!({"modle": "x"})).starts_with("prompt.endpoints[0].modle: unknown field"));
}

#[test]
fn a_duplicate_path_and_method_is_refused_but_another_method_is_fine() {
    let dup = compile(json!({"endpoints": [summarizer(), summarizer()]})).unwrap_err();
    assert_eq!(dup, "prompt.endpoints[1].path: POST /summarize is already served by prompt.endpoints[0]");
    let mut put = summarizer();
    put["method"] = json!("PUT");
    let config = compile(json!({"endpoints": [summarizer(), put]})).unwrap();
    assert_eq!(config.endpoints.len(), 2);
}

#[test]
fn colliding_operation_ids_are_numbered() {
    let mut a = summarizer();
    a["path"] = json!("/a-b");
    let mut b = summarizer();
    b["path"] = json!("/a_b");
    let config = compile(json!({"endpoints": [a, b]})).unwrap();
    let ids: Vec<&str> = config.endpoints.iter().map(|e| e.operation_id.as_str()).collect();
    assert_eq!(ids, ["post_a_b", "post_a_b_2"]);
}

#[test]
fn variable_mistakes_name_their_path() {
    let at = "prompt.endpoints[0].variables.v";
    assert_eq!(
        variable(json!({"type": "string", "min_length": 5, "max_length": 2})),
        format!("{at}.max_length: must be >= min_length")
    );
    assert_eq!(
        variable(json!({"type": "number", "minimum": 5, "maximum": 2})),
        format!("{at}.maximum: must be >= minimum")
    );
    assert_eq!(
        variable(json!({"type": "boolean", "min_length": 1})),
        format!("{at}.min_length: only applies to string and array variables")
    );
    assert_eq!(
        variable(json!({"type": "string", "maximum": 1})),
        format!("{at}.maximum: only applies to number and integer variables")
    );
    assert_eq!(
        variable(json!({"type": "string", "values": ["a"]})),
        format!("{at}.values: only applies to enum variables")
    );
    assert_eq!(
        variable(json!({"type": "string", "items": "string"})),
        format!("{at}.items: only applies to array variables")
    );
    assert_eq!(
        variable(json!({"type": "enum", "values": []})),
        format!("{at}.values: an enum variable needs at least one value")
    );
    assert_eq!(
        variable(json!({"type": "enum", "values": ["a", "b", "a"]})),
        format!("{at}.values[2]: \"a\" is listed twice")
    );
    assert_eq!(
        variable(json!({"type": "array"})),
        format!("{at}.items: an array variable needs its item type")
    );
    assert!(variable(json!({"type": "array", "items": "enum"}))
        .starts_with(&format!("{at}.items: unknown variant `enum`")));
    assert!(variable(json!({"type": "text"})).starts_with(&format!("{at}.type: unknown variant `text`")));
    assert!(variable(json!({"type": "string", "pattern": "x"}))
        .starts_with(&format!("{at}.pattern: unknown field")));
}

#[test]
fn defaults_must_validate_and_only_optional_variables_take_them() {
    let at = "prompt.endpoints[0].variables.v.default";
    assert_eq!(
        variable(json!({"type": "string", "max_length": 2, "default": "abc"})),
        format!("{at}: must be at most 2 characters long")
    );
    assert_eq!(
        variable(json!({"type": "enum", "values": ["a"], "default": "b"})),
        format!("{at}: must be one of: a")
    );
    assert_eq!(variable(json!({"type": "integer", "default": 1.5})), format!("{at}: must be an integer"));
    assert_eq!(
        variable(json!({"type": "array", "items": "string", "default": ["a", 2]})),
        format!("{at}: item [1] must be a string, not a number")
    );
    assert_eq!(
        variable(json!({"type": "string", "required": true, "default": "x"})),
        format!("{at}: a required variable never uses its default")
    );
    assert_eq!(variable(json!({"type": "boolean", "default": false})), "");
}

#[test]
fn variable_names_must_be_placeholder_names() {
    let mut endpoint = summarizer();
    endpoint["variables"]["bad-name"] = json!({"type": "string"});
    assert!(with_endpoint(endpoint)
        .unwrap_err()
        .starts_with("prompt.endpoints[0].variables.bad-name: a variable name is"));
}

#[test]
fn a_placeholder_naming_an_undeclared_variable_names_its_message() {
    let mut endpoint = summarizer();
    endpoint["versions"] = json!([
        {"name": "v1", "messages": [{"role": "user", "content": "{{text}}"}]},
        {"name": "v2", "messages": [{"role": "system", "content": "ok"}, {"role": "user", "content": "{{txet}}"}]}
    ]);
    assert_eq!(
        with_endpoint(endpoint).unwrap_err(),
        "prompt.endpoints[0].versions[1].messages[1].content: {{txet}} names no declared variable"
    );
}

#[test]
fn message_roles_are_system_user_or_assistant() {
    let mut endpoint = summarizer();
    endpoint["versions"][0]["messages"][0]["role"] = json!("tool");
    assert!(with_endpoint(endpoint)
        .unwrap_err()
        .starts_with("prompt.endpoints[0].versions[0].messages[0].role: unknown variant `tool`"));
}

#[test]
fn output_modes_are_checked() {
    let config = with_endpoint(extractor()).unwrap();
    assert!(matches!(endpoint_of(&config).output, Output::Json(_)));
    let out = |output: Value| summarizer_with(json!({ "output": output })).map(|_| ()).unwrap_err();
    assert!(
        out(json!({"mode": "yaml"})).starts_with("prompt.endpoints[0].output.mode: unknown variant `yaml`")
    );
    assert!(out(json!({"mode": "text", "schema": {}}))
        .starts_with("prompt.endpoints[0].output.schema: unknown field `schema`"));
    assert!(out(json!({"mode": "json"})).starts_with("prompt.endpoints[0].output: missing field `schema`"));
    assert_eq!(
        out(json!({"mode": "json", "schema": {"type": "array"}})),
        "prompt.endpoints[0].output.schema.type: must be \"object\""
    );
    assert!(out(
        json!({"mode": "json", "schema": {"type": "object", "properties": {"a": {"pattern": "x"}}}})
    )
    .starts_with("prompt.endpoints[0].output.schema.properties.a.pattern: Tollgate does not enforce"));
    assert!(summarizer_with(json!({"output": {"mode": "text"}})).is_ok());
}

#[test]
fn openapi_settings_are_checked() {
    let config =
        compile(json!({"openapi": {"path": "/docs/openapi.json", "title": "T", "version": "2"}})).unwrap();
    assert_eq!(config.openapi.path, "/docs/openapi.json");
    assert_eq!(config.openapi.document()["info"], json!({"title": "T", "version": "2"}));
    assert_eq!(
        compile(json!({"openapi": {"path": "docs"}})).unwrap_err(),
        "prompt.openapi.path: must start with '/'"
    );
    assert!(compile(json!({"openapi": {"titel": "x"}}))
        .unwrap_err()
        .starts_with("prompt.openapi.titel: unknown field"));
    assert!(compile(json!({"endpoint": []})).unwrap_err().starts_with("prompt.endpoint: unknown field"));
}

#[test]
fn the_document_is_served_on_get_at_its_path_only() {
    let config = with_endpoint(summarizer()).unwrap();
    let reply = config.openapi_reply("GET", "/.well-known/tollgate/openapi.json?v=1").unwrap();
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["openapi"], "3.1.0");
    assert!(config.openapi_reply("POST", DEFAULT_OPENAPI_PATH).is_none());
    assert!(config.openapi_reply("GET", "/summarize").is_none());
}

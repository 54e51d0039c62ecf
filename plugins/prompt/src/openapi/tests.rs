#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use crate::testing::{compile, extractor, summarizer};

fn document() -> Value {
    let mut put = summarizer();
    put["method"] = json!("PUT");
    put["versions"] = json!([
        {"name": "a", "weight": 3, "messages": [{"role": "user", "content": "{{text}}"}]},
        {"name": "b", "messages": [{"role": "user", "content": "Again: {{text}}"}]}
    ]);
    let tagged = json!({
        "path": "/tag", "model": "m",
        "variables": {"labels": {"type": "array", "items": "string", "min_length": 1, "max_length": 4},
                      "flag": {"type": "boolean", "default": true}, "ratio": {"type": "number", "maximum": 1}},
        "versions": [{"name": "v", "messages": [{"role": "user", "content": "{{labels}}"}]}]
    });
    let config = compile(json!({
        "endpoints": [summarizer(), put, extractor(), tagged],
        "openapi": {"title": "Team prompts", "version": "2025-01"}
    }))
    .unwrap();
    // Read back from the served bytes: the document clients get, not an in-memory stand-in.
    serde_json::from_slice(config.openapi.bytes()).unwrap()
}

#[test]
fn the_document_is_openapi_3_1_with_info_and_one_path_item_per_path() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"], json!({"title": "Team prompts", "version": "2025-01"}));
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths.len(), 3);
    let summarize = doc["paths"]["/summarize"].as_object().unwrap();
    assert_eq!(summarize.keys().collect::<Vec<_>>().len(), 2, "POST and PUT share the path item");
    assert_eq!(summarize["post"]["operationId"], "post_summarize");
    assert_eq!(summarize["put"]["operationId"], "put_summarize");
    assert_eq!(summarize["post"]["description"], "Summarize a text");
}

#[test]
fn the_request_body_schema_is_built_from_the_variables() {
    let doc = document();
    let body = &doc["paths"]["/summarize"]["post"]["requestBody"];
    assert_eq!(body["required"], true);
    assert_eq!(
        body["content"]["application/json"]["schema"],
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["text"],
            "properties": {
                "style": {"type": "string", "enum": ["bullets", "prose"], "default": "prose"},
                "text": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "The text"},
                "words": {"type": "integer", "minimum": 10.0, "maximum": 500.0}
            }
        })
    );
    let tag = &doc["paths"]["/tag"]["post"]["requestBody"];
    assert_eq!(tag["required"], false, "no required variable: the body may be left out");
    let schema = &tag["content"]["application/json"]["schema"];
    assert!(schema.get("required").is_none());
    assert_eq!(
        schema["properties"]["labels"],
        json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4})
    );
    assert_eq!(schema["properties"]["flag"], json!({"type": "boolean", "default": true}));
    assert_eq!(schema["properties"]["ratio"], json!({"type": "number", "maximum": 1.0}));
}

#[test]
fn the_success_schema_types_the_result_by_output_mode() {
    let doc = document();
    let ok = |path: &str, method: &str| {
        doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"].clone()
    };
    let text = ok("/summarize", "post");
    assert_eq!(text["required"], json!(["result", "model", "version", "usage"]));
    assert_eq!(text["properties"]["result"]["type"], "string");
    assert_eq!(text["properties"]["version"]["enum"], json!(["v1"]));
    assert_eq!(text["properties"]["usage"], json!({"$ref": "#/components/schemas/Usage"}));
    assert_eq!(ok("/summarize", "put")["properties"]["version"]["enum"], json!(["a", "b"]));
    assert_eq!(ok("/extract", "post")["properties"]["result"], extractor()["output"]["schema"]);
}

#[test]
fn every_operation_lists_the_error_responses_sharing_one_error_schema() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["400", "401", "403", "429", "502"] {
                let reference = operation["responses"][status]["$ref"].as_str().unwrap_or_default();
                let name = reference.strip_prefix("#/components/responses/").unwrap_or_else(|| {
                    unreachable!("{method} {path} {status} is not a reference: {reference}")
                });
                let response = &doc["components"]["responses"][name];
                assert!(response["description"].is_string());
                assert_eq!(
                    response["content"]["application/json"]["schema"],
                    json!({"$ref": "#/components/schemas/Error"})
                );
            }
        }
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["properties"]["error"]["required"], json!(["message", "type", "code"]));
    assert!(error["properties"]["error"]["properties"]["fields"]["items"]["properties"]["field"].is_object());
}

#[test]
fn an_empty_config_still_gives_a_valid_skeleton() {
    let config = compile(json!({})).unwrap();
    let doc = config.openapi.document();
    assert_eq!(doc["paths"], json!({}));
    assert_eq!(doc["info"], json!({"title": "Tollgate prompt APIs", "version": "1.0.0"}));
    assert!(doc["components"]["schemas"]["Error"].is_object());
}

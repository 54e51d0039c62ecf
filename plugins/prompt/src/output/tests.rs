#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use serde_json::{json, Value};

use crate::testing::{endpoint_of, extractor, summarizer, with_endpoint};
use crate::{PromptConfig, PromptError, Shaped};

fn completion(content: Value) -> Vec<u8> {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                  "prompt_tokens_details": {"cached_tokens": 0}}
    })
    .to_string()
    .into_bytes()
}

fn shape(config: &PromptConfig, body: &[u8]) -> Result<Shaped, PromptError> {
    endpoint_of(config).shape_response("v1", body)
}

fn reply(config: &PromptConfig, body: &[u8]) -> Value {
    match shape(config, body).unwrap() {
        Shaped::Reply(value) => value,
        Shaped::SchemaMismatch(reason) => panic!("mismatch: {reason}"),
    }
}

fn mismatch(config: &PromptConfig, content: &str) -> String {
    match shape(config, &completion(json!(content))).unwrap() {
        Shaped::SchemaMismatch(reason) => reason,
        Shaped::Reply(value) => panic!("accepted: {value}"),
    }
}

#[test]
fn text_output_is_the_answer_with_model_version_and_usage() {
    let config = with_endpoint(summarizer()).unwrap();
    assert_eq!(
        reply(&config, &completion(json!("Cats nap."))),
        json!({
            "result": "Cats nap.",
            "model": "gpt-4o-mini-2024-07-18",
            "version": "v1",
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        })
    );
}

#[test]
fn text_that_looks_like_json_stays_text_in_text_mode() {
    let config = with_endpoint(summarizer()).unwrap();
    assert_eq!(reply(&config, &completion(json!("{\"a\": 1}")))["result"], json!("{\"a\": 1}"));
}

#[test]
fn missing_usage_and_model_fall_back_to_zero_and_the_configured_model() {
    let config = with_endpoint(summarizer()).unwrap();
    let bare = json!({"choices": [{"message": {"role": "assistant", "content": "x"}}]}).to_string();
    let body = reply(&config, bare.as_bytes());
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["usage"], json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}));
}

#[test]
fn json_output_is_parsed_and_checked() {
    let config = with_endpoint(extractor()).unwrap();
    let answer = r#"{"name": "Ada", "age": 36, "tags": ["math"]}"#;
    let body = reply(&config, &completion(json!(answer)));
    assert_eq!(body["result"], json!({"name": "Ada", "age": 36, "tags": ["math"]}));
    assert_eq!(body["version"], "v1");
}

#[test]
fn a_code_fence_around_the_json_is_tolerated() {
    let config = with_endpoint(extractor()).unwrap();
    let fenced = "```json\n{\"name\": \"Ada\", \"age\": null, \"tags\": []}\n```\n";
    assert_eq!(reply(&config, &completion(json!(fenced)))["result"]["age"], Value::Null);
}

#[test]
fn json_that_breaks_the_schema_is_a_mismatch_naming_the_problems() {
    let config = with_endpoint(extractor()).unwrap();
    assert_eq!(
        mismatch(&config, r#"{"name": "", "age": "36", "tags": ["a", "b", "c", "d"], "x": 1}"#),
        "(root): has the property \"x\", which the schema does not allow; /age: must be an integer or null, \
         not a string; /name: must be at least 1 characters long; /tags: must have at most 3 items"
    );
    assert_eq!(
        mismatch(&config, r#"{"name": "Ada"}"#).matches("is missing the required property").count(),
        2
    );
}

#[test]
fn text_that_is_not_json_is_a_mismatch() {
    let config = with_endpoint(extractor()).unwrap();
    assert!(mismatch(&config, "Sure! Here is the JSON: {").starts_with("the answer is not JSON: "));
    assert!(mismatch(&config, "[1, 2]").starts_with("(root): must be an object, not an array"));
}

#[test]
fn a_mismatch_after_the_retry_is_a_502_output_schema_mismatch() {
    let config = with_endpoint(extractor()).unwrap();
    let shaped = shape(&config, &completion(json!("nope"))).unwrap();
    let error = shaped.into_result().unwrap_err();
    assert_eq!((error.status(), error.code()), (502, "output_schema_mismatch"));
    assert!(error.to_string().contains("the answer is not JSON"));
    let good = shape(&config, &completion(json!(r#"{"name": "A", "age": 1, "tags": []}"#))).unwrap();
    assert!(good.into_result().is_ok());
}

#[test]
fn a_completion_without_text_is_a_502_no_output() {
    let config = with_endpoint(summarizer()).unwrap();
    let refused = json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": []},
                                      "finish_reason": "tool_calls"}]});
    let error = shape(&config, refused.to_string().as_bytes()).unwrap_err();
    assert_eq!((error.status(), error.code()), (502, "prompt_no_output"));
    assert!(error.to_string().contains("finish_reason \"tool_calls\""));
    assert_eq!(shape(&config, br#"{"choices": []}"#).unwrap_err().code(), "prompt_no_output");
    assert_eq!(shape(&config, b"<html>").unwrap_err().code(), "prompt_no_output");
}

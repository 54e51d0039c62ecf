use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::adapter::ChunkSink;
use crate::sse::SseEvent;

fn adapter(api_version: Option<&str>) -> AzureAdapter {
    AzureAdapter::new(ProviderSettings {
        name: "azure".into(),
        base_path: String::new(),
        api_key: Some("az-key".into()),
        api_version: api_version.map(str::to_string),
        deployments: BTreeMap::from([("gpt-4o".to_string(), "prod-gpt4o".to_string())]),
        default_max_tokens: 0,
        ..ProviderSettings::default()
    })
}

fn target(model: &str) -> Target<'_> {
    Target { upstream_model: model, client_model: model, created: 1, request_id: "r" }
}

fn chat(adapter: &AzureAdapter, model: &str, request: Value) -> Result<(UpstreamRequest, Value), AiError> {
    let req: ChatRequest = serde_json::from_value(request).unwrap();
    let up = adapter.chat_request(&req, &target(model))?;
    let body = serde_json::from_slice(&up.body).unwrap();
    Ok((up, body))
}

#[test]
fn chat_goes_to_the_mapped_deployment_with_an_api_key() {
    let (up, body) =
        chat(&adapter(None), "gpt-4o", json!({"model": "gpt-4o", "messages": [], "seed": 3})).unwrap();
    assert_eq!(up.path, "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21");
    assert!(up.headers.contains(&("api-key".to_string(), "az-key".to_string())));
    assert!(!up.headers.iter().any(|(name, _)| name == "authorization"));
    assert_eq!(body, json!({"messages": [], "seed": 3}));
}

#[test]
fn an_unmapped_model_is_its_own_deployment() {
    let (up, _) =
        chat(&adapter(Some("2025-01-01-preview")), "gpt-4o-mini", json!({"model": "x", "messages": []}))
            .unwrap();
    assert_eq!(up.path, "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2025-01-01-preview");
}

#[test]
fn deployment_names_that_would_change_the_path_are_refused() {
    for bad in ["a/b", "a?b", "a#b", "a%2Fb", "a b", "a\tb", "..", ""] {
        let err = chat(&adapter(None), bad, json!({"model": "x", "messages": []})).unwrap_err();
        assert_eq!(err.status(), 400, "{bad:?}");
        assert_eq!(err.to_openai_json()["error"]["param"], "model");
    }
}

#[test]
fn stream_usage_is_requested_only_from_versions_that_accept_it() {
    let stream = json!({"model": "x", "messages": [], "stream": true});
    let (_, body) = chat(&adapter(None), "gpt-4o", stream.clone()).unwrap();
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    let (_, body) = chat(&adapter(Some("2024-06-01")), "gpt-4o", stream).unwrap();
    assert!(body.get("stream_options").is_none());
}

#[test]
fn embeddings_use_the_deployment_and_no_model() {
    let req: EmbeddingsRequest =
        serde_json::from_value(json!({"model": "text-embedding-3-small", "input": "hi", "dimensions": 8}))
            .unwrap();
    let up = adapter(None).embeddings_request(&req, &target("text-embedding-3-small")).unwrap();
    assert_eq!(up.path, "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21");
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(body, json!({"input": "hi", "dimensions": 8}));
}

#[test]
fn content_filter_errors_are_client_errors_with_their_code() {
    let body = json!({"error": {"message": "The response was filtered", "type": null, "param": "prompt",
        "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": true}}}}});
    let err = adapter(None).error_response(400, body.to_string().as_bytes());
    assert_eq!(err.status(), 400);
    assert_eq!(err.code(), Some("content_filter"));
    assert_eq!(err.kind(), "invalid_request_error");
    assert_eq!(err.to_string(), "The response was filtered");
}

#[test]
fn other_errors_keep_their_status() {
    let body = br#"{"error":{"code":"429","message":"Requests have exceeded the rate limit."}}"#;
    let err = adapter(None).error_response(429, body);
    assert_eq!((err.status(), err.code()), (429, Some("429")));
    assert_eq!(adapter(None).error_response(503, b"Service Unavailable").status(), 502);
}

#[test]
fn prompt_filter_chunks_are_swallowed_and_filtered_finishes_pass() {
    let mut stream = adapter(None).stream_translator(&target("gpt-4o"));
    let mut sink = ChunkSink::new(&target("gpt-4o"));
    let events = [
        r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#,
        r#"{"choices":[{"content_filter_results":{},"delta":{"content":"Hi"},"finish_reason":null,"index":0}],"created":5,"id":"chatcmpl-A","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"content_filter","index":0}],"created":5,"id":"chatcmpl-A","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk"}"#,
        "[DONE]",
    ];
    for data in events {
        stream.on_event(&SseEvent { event: None, data: data.into() }, &mut sink).unwrap();
    }
    stream.finish(&mut sink).unwrap();
    let text = String::from_utf8(sink.take()).unwrap();
    assert_eq!(text.matches("data: ").count(), 2);
    assert!(!text.contains("prompt_filter_results"));
    assert!(text.contains("\"finish_reason\":\"content_filter\""));
    assert_eq!((sink.id.as_str(), sink.model.as_str()), ("chatcmpl-A", "gpt-4o-2024-08-06"));
}

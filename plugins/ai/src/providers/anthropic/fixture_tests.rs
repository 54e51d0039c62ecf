//! Runs every case in `tests/fixtures/anthropic` through this adapter alone (FIXTURES.md), so the cases are
//! checked before the gateway-level runner exists.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::testing::{payloads, sse_events};
use super::AnthropicAdapter;
use crate::adapter::{Adapter, ChunkSink, ProviderSettings, Target};
use crate::chat::ChatRequest;
use crate::Usage;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn provider_settings(config: &Value) -> ProviderSettings {
    let provider = &config["providers"][0];
    let base_url = provider["base_url"].as_str().unwrap();
    let after_scheme = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    let base_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]).trim_end_matches('/');
    ProviderSettings {
        name: provider["name"].as_str().unwrap().into(),
        base_path: base_path.into(),
        api_key: provider["api_key"].as_str().map(String::from),
        api_version: provider["api_version"].as_str().map(String::from),
        default_max_tokens: provider["default_max_tokens"].as_u64().unwrap_or(0),
        ..ProviderSettings::default()
    }
}

/// The upstream model for a client model: an exact route first, then a `prefix*` wildcard that keeps the
/// client's name unless it names a model.
fn upstream_model(config: &Value, client: &str) -> String {
    let models = config["models"].as_array().unwrap();
    let exact = models.iter().find(|m| m["name"] == client);
    let route = exact.or_else(|| {
        models.iter().find(|m| {
            m["name"].as_str().and_then(|n| n.strip_suffix('*')).is_some_and(|p| client.starts_with(p))
        })
    });
    let route = route.unwrap_or_else(|| panic!("no route for model {client}"));
    route["model"].as_str().unwrap_or(client).to_string()
}

/// Drops what FIXTURES.md says is not compared: top-level `created`, and `id` when the expectation has none.
fn comparable(actual: &Value, expected: &Value) -> Value {
    let mut actual = actual.clone();
    if let Some(obj) = actual.as_object_mut() {
        obj.remove("created");
        if expected.get("id").is_none() {
            obj.remove("id");
        }
    }
    actual
}

fn without_created(expected: &Value) -> Value {
    let mut expected = expected.clone();
    if let Some(obj) = expected.as_object_mut() {
        obj.remove("created");
    }
    expected
}

fn run_case(path: &Path, config: &Value) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let case = read_json(path);
    assert!(case["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}: description");
    let request: ChatRequest = serde_json::from_value(case["request"].clone()).unwrap();
    let upstream_model = upstream_model(config, &request.model);
    let target = Target {
        upstream_model: &upstream_model,
        client_model: &request.model,
        created: 1700000000,
        request_id: "test",
    };
    let adapter = AnthropicAdapter::new(provider_settings(config));

    let upstream = adapter.chat_request(&request, &target).unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = &case["expected_upstream"];
    assert_eq!(upstream.path, expected["path"].as_str().unwrap(), "{name}: upstream path");
    for (header, value) in expected["headers"].as_object().unwrap() {
        let sent = upstream.headers.iter().find(|(h, _)| h == header).map(|(_, v)| v.as_str());
        assert_eq!(sent, value.as_str(), "{name}: header {header}");
    }
    assert!(!upstream.headers.iter().any(|(h, _)| h == "authorization"), "{name}: client credential sent");
    let body: Value = serde_json::from_slice(&upstream.body).unwrap();
    assert_eq!(body, expected["body"], "{name}: upstream body");
    let dropped: Vec<String> =
        serde_json::from_value(case.get("expected_dropped").cloned().unwrap_or(json!([]))).unwrap();
    assert_eq!(upstream.dropped, dropped, "{name}: dropped");

    let response = &case["upstream_response"];
    let status = u16::try_from(response["status"].as_u64().unwrap()).unwrap();
    let client = &case["expected_client"];
    // A JSON string body stands for a raw, non-JSON body (an HTML error page, plain text).
    let raw_body = match &response["body"] {
        Value::String(text) => text.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    if !(200..300).contains(&status) {
        let err = adapter.error_response(status, &raw_body);
        assert_eq!(err.status(), client["status"].as_u64().unwrap() as u16, "{name}: client status");
        assert_eq!(err.to_openai_json(), client["body"], "{name}: client error body");
        return;
    }
    assert_eq!(client["status"], 200, "{name}: client status");
    let usage = if let Some(sse) = response["sse"].as_str() {
        let mut translator = adapter.stream_translator(&target);
        let mut sink = ChunkSink::new(&target);
        for event in sse_events(sse) {
            translator.on_event(&event, &mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        translator.finish(&mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
        let usage = translator.usage();
        if request.wants_stream_usage() {
            sink.usage_chunk(&usage);
        }
        sink.done();
        let actual = payloads(&sink.bytes);
        let expected = client["sse"].as_array().unwrap();
        assert_eq!(actual.len(), expected.len(), "{name}: chunk count, got {actual:#?}");
        for (i, (got, want)) in actual.iter().zip(expected).enumerate() {
            assert_eq!(comparable(got, want), without_created(want), "{name}: chunk {i}");
        }
        usage
    } else {
        let translated = adapter.chat_response(&raw_body, &target).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Value = serde_json::from_slice(&translated.body).unwrap();
        assert_eq!(
            comparable(&got, &client["body"]),
            without_created(&client["body"]),
            "{name}: client body"
        );
        translated.usage
    };
    if let Some(expected) = case.get("expected_usage") {
        let expected: Usage = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(usage, expected, "{name}: usage");
    }
}

#[test]
fn every_fixture_case_passes() {
    let dir = fixture_dir();
    let config = read_json(&dir.join("provider.json"));
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("provider.json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "expected the full set of cases, found {}", cases.len());
    for case in &cases {
        run_case(case, &config);
    }
}

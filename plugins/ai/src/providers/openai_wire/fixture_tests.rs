//! Runs every case under `tests/fixtures/{openai,azure,mistral,openai_compatible}/` through its adapter, as
//! FIXTURES.md describes them. A JSON string as an upstream `body` stands for a raw, non-JSON body.

use std::path::Path;

use serde_json::{json, Value};

use crate::adapter::{Adapter, ChunkSink, EmbeddingsRequest, ProviderSettings, Target};
use crate::chat::ChatRequest;
use crate::providers::ProviderKind;
use crate::sse::SseEvent;
use crate::Usage;

const DIRS: &[&str] = &["openai", "azure", "mistral", "openai_compatible"];

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The adapter for the config's only provider, and the `models` list that routes to it.
fn provider(config: &Value) -> (Box<dyn Adapter>, Vec<Value>) {
    let entry = &config["providers"][0];
    let kind: ProviderKind = serde_json::from_value(entry["kind"].clone()).unwrap();
    let base_url = entry["base_url"].as_str().unwrap();
    let after_scheme = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    let base_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]).trim_end_matches('/');
    let deployments = entry["deployments"]
        .as_object()
        .map(|map| map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect());
    let settings = ProviderSettings {
        name: entry["name"].as_str().unwrap().into(),
        base_path: base_path.into(),
        api_key: entry["api_key"].as_str().map(String::from),
        api_version: entry["api_version"].as_str().map(String::from),
        deployments: deployments.unwrap_or_default(),
        default_max_tokens: 4096,
        ..ProviderSettings::default()
    };
    (kind.adapter(settings), config["models"].as_array().unwrap().clone())
}

fn upstream_model(models: &[Value], client: &str) -> String {
    let route = models.iter().find(|m| m["name"] == client).unwrap_or_else(|| panic!("no model {client}"));
    route["model"].as_str().unwrap_or(client).to_string()
}

/// Drops what FIXTURES.md says not to compare: `created` always, `id` when the expectation has none.
fn comparable(actual: &Value, expected: &Value) -> Value {
    let mut actual = actual.clone();
    if let Some(object) = actual.as_object_mut() {
        object.remove("created");
        if expected.get("id").is_none() {
            object.remove("id");
        }
    }
    actual
}

fn without_created(expected: &Value) -> Value {
    let mut expected = expected.clone();
    if let Some(object) = expected.as_object_mut() {
        object.remove("created");
    }
    expected
}

/// Splits fixture SSE text on blank lines into events.
fn events(sse: &str) -> Vec<SseEvent> {
    sse.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut event = SseEvent::default();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(rest) = line.strip_prefix("data:") {
                    data.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
                } else if let Some(rest) = line.strip_prefix("event:") {
                    event.event = Some(rest.trim().to_string());
                }
            }
            event.data = data.join("\n");
            (!data.is_empty() || event.event.is_some()).then_some(event)
        })
        .collect()
}

fn run_case(name: &str, case: &Value, adapter: &dyn Adapter, models: &[Value]) {
    assert!(case["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}: description");
    let embeddings = case["path"].as_str() == Some("/v1/embeddings");
    let client_model = case["request"]["model"].as_str().unwrap().to_string();
    let upstream_name = upstream_model(models, &client_model);
    let target = Target {
        upstream_model: &upstream_name,
        client_model: &client_model,
        created: 1700000000,
        request_id: "test",
    };

    let (upstream, chat) = if embeddings {
        let req: EmbeddingsRequest = serde_json::from_value(case["request"].clone()).unwrap();
        (adapter.embeddings_request(&req, &target), None)
    } else {
        let req: ChatRequest = serde_json::from_value(case["request"].clone()).unwrap();
        (adapter.chat_request(&req, &target), Some(req))
    };
    let expected_client = &case["expected_client"];
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(err) => {
            // A request refused before it is sent.
            assert_eq!(err.status(), expected_client["status"], "{name}: status");
            assert_eq!(err.to_openai_json(), expected_client["body"], "{name}: error body");
            return;
        }
    };
    let expected = &case["expected_upstream"];
    assert_eq!(upstream.path, expected["path"].as_str().unwrap(), "{name}: upstream path");
    for (header, value) in expected["headers"].as_object().unwrap() {
        let sent = upstream.headers.iter().find(|(h, _)| h == header).map(|(_, v)| v.as_str());
        assert_eq!(sent, value.as_str(), "{name}: header {header}");
    }
    assert!(!upstream.headers.iter().any(|(_, v)| v.contains("client-key")), "{name}: client key leaked");
    let body: Value = serde_json::from_slice(&upstream.body).unwrap();
    assert_eq!(body, expected["body"], "{name}: upstream body");
    let dropped = case.get("expected_dropped").cloned().unwrap_or_else(|| json!([]));
    assert_eq!(json!(upstream.dropped), dropped, "{name}: dropped");

    let response = &case["upstream_response"];
    let status = response["status"].as_u64().unwrap() as u16;
    let raw_body = match &response["body"] {
        Value::String(text) => text.clone().into_bytes(),
        other => serde_json::to_vec(other).unwrap(),
    };
    if !(200..300).contains(&status) {
        let err = adapter.error_response(status, &raw_body);
        assert_eq!(err.status(), expected_client["status"], "{name}: status");
        assert_eq!(err.to_openai_json(), expected_client["body"], "{name}: error body");
        return;
    }
    assert_eq!(expected_client["status"], 200, "{name}: status");
    let usage = if let Some(sse) = response["sse"].as_str() {
        let mut translator = adapter.stream_translator(&target);
        let mut sink = ChunkSink::new(&target);
        for event in events(sse) {
            translator.on_event(&event, &mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        translator.finish(&mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
        if chat.as_ref().is_some_and(ChatRequest::wants_stream_usage) {
            sink.usage_chunk(&translator.usage());
        }
        sink.done();
        let text = String::from_utf8(sink.take()).unwrap();
        let written: Vec<&str> =
            text.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.strip_prefix("data: ").unwrap()).collect();
        let wanted = expected_client["sse"].as_array().unwrap();
        assert_eq!(written.len(), wanted.len(), "{name}: event count\n{text}");
        for (i, (data, want)) in written.iter().zip(wanted).enumerate() {
            if want.is_string() {
                assert_eq!(*data, want.as_str().unwrap(), "{name}: event {i}");
            } else {
                let got: Value = serde_json::from_str(data).unwrap();
                assert_eq!(comparable(&got, want), without_created(want), "{name}: event {i}");
            }
        }
        translator.usage()
    } else {
        let translated = if embeddings {
            adapter.embeddings_response(&raw_body, &target)
        } else {
            adapter.chat_response(&raw_body, &target)
        };
        let translated = translated.unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Value = serde_json::from_slice(&translated.body).unwrap();
        let want = &expected_client["body"];
        assert_eq!(comparable(&got, want), without_created(want), "{name}: client body");
        translated.usage
    };
    if let Some(expected_usage) = case.get("expected_usage") {
        let expected_usage: Usage = serde_json::from_value(expected_usage.clone()).unwrap();
        assert_eq!(usage, expected_usage, "{name}: usage");
    }
}

#[test]
fn every_openai_family_fixture_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut count = 0;
    for dir in DIRS {
        let dir = root.join(dir);
        let (adapter, models) = provider(&read(&dir.join("provider.json")));
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
            if file.file_name().is_some_and(|n| n == "provider.json") {
                continue;
            }
            let name = file.strip_prefix(&root).unwrap().display().to_string();
            run_case(&name, &read(file), adapter.as_ref(), &models);
            count += 1;
        }
    }
    assert!(count >= 40, "only {count} cases");
}

//! Pushes every case in `tests/fixtures/gemini` through the adapter the way the gateway will, until the
//! gateway-level runner exists; the fixture format is described in `FIXTURES.md`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::GeminiAdapter;
use crate::adapter::{Adapter, ChunkSink, EmbeddingsRequest, ProviderSettings, Target};
use crate::chat::ChatRequest;
use crate::sse::SseEvent;

/// The target unit tests use: the `gemini-flash` alias of provider.json.
pub(super) fn target() -> Target<'static> {
    Target {
        upstream_model: "gemini-2.5-flash",
        client_model: "gemini-flash",
        created: 1_700_000_000,
        request_id: "test",
    }
}

/// An adapter configured like provider.json.
pub(super) fn adapter() -> GeminiAdapter {
    GeminiAdapter::new(ProviderSettings {
        name: "gemini".into(),
        api_key: Some("test-provider-key".into()),
        ..ProviderSettings::default()
    })
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemini")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Config {
    settings: ProviderSettings,
    /// `(name, model)` of `models[]`; a name ending in `*` is a prefix.
    models: Vec<(String, Option<String>)>,
}

impl Config {
    fn load() -> Config {
        let raw = read_json(&fixtures().join("provider.json"));
        let provider = &raw["providers"][0];
        let base_url = provider["base_url"].as_str().unwrap();
        let after_scheme = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
        let base_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]).trim_end_matches('/');
        let settings = ProviderSettings {
            name: provider["name"].as_str().unwrap().to_string(),
            base_path: base_path.to_string(),
            api_key: provider["api_key"].as_str().map(str::to_string),
            ..ProviderSettings::default()
        };
        let models = raw["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m["model"].as_str().map(str::to_string)))
            .collect();
        Config { settings, models }
    }

    /// Exact names win over wildcards, as in the gateway's routing.
    fn upstream_model(&self, client: &str) -> String {
        let exact = self.models.iter().find(|(name, _)| name == client);
        let wildcard = || {
            self.models.iter().find(|(name, _)| name.strip_suffix('*').is_some_and(|p| client.starts_with(p)))
        };
        let (_, model) = exact.or_else(wildcard).unwrap_or_else(|| panic!("no model route for {client}"));
        model.clone().unwrap_or_else(|| client.to_string())
    }
}

/// Splits raw SSE text into events (test-only; the gateway has an incremental parser).
pub(super) fn split_sse(text: &str) -> Vec<SseEvent> {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = SseEvent::default();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                } else if let Some(value) = line.strip_prefix("event:") {
                    event.event = Some(value.trim().to_string());
                }
            }
            event.data = data.join("\n");
            (!data.is_empty()).then_some(event)
        })
        .collect()
}

/// The `data` of each event the client received, `[DONE]` as a string.
pub(super) fn client_events(bytes: &[u8]) -> Vec<Value> {
    split_sse(std::str::from_utf8(bytes).unwrap())
        .into_iter()
        .map(
            |e| {
                if e.data == "[DONE]" {
                    Value::String(e.data)
                } else {
                    serde_json::from_str(&e.data).unwrap()
                }
            },
        )
        .collect()
}

/// FIXTURES.md: a top-level `created` is ignored, and `id` too when the expected object has none.
fn comparable(mut actual: Value, expected: &Value) -> Value {
    if let Some(object) = actual.as_object_mut() {
        object.remove("created");
        if expected.get("id").is_none() {
            object.remove("id");
        }
    }
    actual
}

fn without_created(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove("created");
    }
    value
}

fn body_bytes(body: &Value) -> Vec<u8> {
    match body {
        Value::String(text) => text.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

fn run_case(config: &Config, case: &Value) {
    let adapter = GeminiAdapter::new(config.settings.clone());
    let embeddings = case["path"].as_str() == Some("/v1/embeddings");
    let client_model = case["request"]["model"].as_str().unwrap().to_string();
    let upstream_model = config.upstream_model(&client_model);
    let target = Target {
        upstream_model: &upstream_model,
        client_model: &client_model,
        created: 1_700_000_000,
        request_id: "test",
    };

    let (upstream, embeddings_req, chat_req) = if embeddings {
        let req: EmbeddingsRequest = serde_json::from_value(case["request"].clone()).unwrap();
        (adapter.embeddings_request(&req, &target).unwrap(), Some(req), None)
    } else {
        let req: ChatRequest = serde_json::from_value(case["request"].clone()).unwrap();
        (adapter.chat_request(&req, &target).unwrap(), None, Some(req))
    };
    let expected = &case["expected_upstream"];
    assert_eq!(upstream.path, expected["path"].as_str().unwrap(), "upstream path");
    for (name, value) in expected["headers"].as_object().unwrap() {
        let sent =
            upstream.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        assert_eq!(sent, value.as_str(), "upstream header {name}");
    }
    assert!(
        !upstream.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization")),
        "client credential"
    );
    let body: Value = serde_json::from_slice(&upstream.body).unwrap();
    assert_eq!(body, expected["body"], "upstream body");
    let dropped: Vec<String> =
        case.get("expected_dropped").map(|d| serde_json::from_value(d.clone()).unwrap()).unwrap_or_default();
    assert_eq!(upstream.dropped, dropped, "dropped fields");

    let response = &case["upstream_response"];
    let status = u16::try_from(response["status"].as_u64().unwrap()).unwrap();
    let client = &case["expected_client"];
    if !(200..300).contains(&status) {
        let err = adapter.error_response(status, &body_bytes(&response["body"]));
        assert_eq!(u64::from(err.status()), client["status"].as_u64().unwrap(), "client status");
        assert_eq!(err.to_openai_json(), client["body"], "client error body");
        return;
    }
    assert_eq!(client["status"].as_u64(), Some(200), "client status");
    let usage = if let Some(sse) = response["sse"].as_str() {
        let mut translator = adapter.stream_translator(&target);
        let mut sink = ChunkSink::new(&target);
        for event in split_sse(sse) {
            translator.on_event(&event, &mut sink).unwrap();
        }
        translator.finish(&mut sink).unwrap();
        if chat_req.as_ref().is_some_and(ChatRequest::wants_stream_usage) {
            sink.usage_chunk(&translator.usage());
        }
        sink.done();
        let expected_events = client["sse"].as_array().unwrap();
        let actual = client_events(&sink.take());
        assert_eq!(actual.len(), expected_events.len(), "number of client events: {actual:#?}");
        for (i, (actual, expected)) in actual.into_iter().zip(expected_events).enumerate() {
            assert_eq!(comparable(actual, expected), without_created(expected.clone()), "client event {i}");
        }
        translator.usage()
    } else {
        let body = body_bytes(&response["body"]);
        let translated = match &embeddings_req {
            Some(req) => adapter.embeddings_response_for(req, &body, &target).unwrap(),
            None => adapter.chat_response(&body, &target).unwrap(),
        };
        let actual: Value = serde_json::from_slice(&translated.body).unwrap();
        let expected = &client["body"];
        assert_eq!(comparable(actual, expected), without_created(expected.clone()), "client body");
        translated.usage
    };
    if let Some(expected_usage) = case.get("expected_usage") {
        assert_eq!(&serde_json::to_value(usage).unwrap(), expected_usage, "usage");
    }
}

#[test]
fn every_gemini_fixture_passes() {
    let config = Config::load();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("provider.json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 17, "expected the full set of cases, found {}", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let case = read_json(path);
        let outcome = std::panic::catch_unwind(|| run_case(&config, &case));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", path.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

//! Runs every case in `tests/fixtures/bedrock` (FIXTURES.md's format; the `ai` config is `config.json`) through
//! the compiled config, the adapter, the event-stream decoder and the translator, driven the way the
//! gateway's `LiveStream` drives them. A stream is given as frames (`{"event": type, "data": payload}` or
//! `{"exception": type, "data": payload}`, optionally `"truncate": n` bytes off the end), encoded here,
//! and fed whole, split in two at every byte boundary, and one byte at a time: the client must see the same
//! events each time. The shared runner (`tests/conformance.rs`) only reads SSE text, hence `config.json`
//! rather than `provider.json` until it learns binary streams.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tollgate_core::ConfigPath;

use super::event_stream::encode;
use crate::adapter::{Adapter, ChunkSink, Target};
use crate::chat::ChatRequest;
use crate::config::{AiConfig, RawAiConfig};
use crate::sse::SseEvent;
use crate::AiError;

/// The gateway's clock in tests (`MemoryHost`): 2023-11-14T22:13:20Z, so signatures are fixed.
pub(super) const CREATED: u64 = 1_700_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bedrock")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(super) fn config() -> AiConfig {
    let raw: RawAiConfig = serde_json::from_value(read_json(&fixtures().join("config.json"))).unwrap();
    AiConfig::compile(raw, &ConfigPath::root().field("ai")).unwrap()
}

/// The encoded event stream of a case.
pub(super) fn encoded_stream(frames: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames.as_array().unwrap() {
        let data = frame["data"].to_string();
        if let Some(kind) = frame["event"].as_str() {
            bytes.extend(encode::event(kind, &data));
        } else if let Some(kind) = frame["exception"].as_str() {
            bytes.extend(encode::exception(kind, &data));
        }
        if let Some(n) = frame["truncate"].as_u64() {
            bytes.truncate(bytes.len() - n as usize);
        }
    }
    bytes
}

/// The client's bytes for a stream fed in these pieces, as `LiveStream::feed` writes them: events as they
/// complete, the end at the provider's last event or the body's, an error as a last event, then `[DONE]`.
pub(super) fn client_stream(
    adapter: &dyn Adapter,
    target: &Target<'_>,
    include_usage: bool,
    pieces: &[&[u8]],
) -> Vec<u8> {
    let mut decoder = adapter.stream_decoder(1 << 20);
    let mut translator = adapter.stream_translator(target);
    let mut sink = ChunkSink::new(target);
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        let mut outcome = decoder.push_events(piece, &mut |event| translator.on_event(event, &mut sink));
        if outcome.is_ok() && (i == last || translator.ended()) {
            outcome = decoder
                .finish_events(&mut |event: &SseEvent| translator.on_event(event, &mut sink))
                .and_then(|()| translator.finish(&mut sink))
                .map(|()| {
                    if include_usage {
                        sink.usage_chunk(&translator.usage());
                    }
                });
            if outcome.is_ok() {
                sink.done();
                break;
            }
        }
        if let Err(error) = outcome {
            sink.write(&error.to_openai_json());
            sink.done();
            break;
        }
    }
    sink.take()
}

/// The `data` of each client event: JSON, or the string `[DONE]`.
pub(super) fn client_events(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let data = event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event {event:?}"));
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
        })
        .collect()
}

/// A top-level `created` is ignored everywhere, a top-level `id` when the expected object has none.
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

fn run_case(config: &AiConfig, case: &Value) {
    let provider = &config.providers[0];
    let adapter = provider.kind.adapter(provider.settings.clone());
    let request: ChatRequest = serde_json::from_value(case["request"].clone()).unwrap();
    let found =
        config.router.route(&request.model).unwrap_or_else(|| panic!("no route for {}", request.model));
    let target = Target {
        upstream_model: &found.upstream_model,
        client_model: &request.model,
        created: CREATED,
        request_id: "test",
    };

    let expected = &case["expected_upstream"];
    let upstream = match adapter.chat_request(&request, &target) {
        Ok(upstream) => upstream,
        Err(error) => {
            assert!(expected.is_null(), "refused: {error:?}");
            assert_eq!(u64::from(error.status()), case["expected_client"]["status"].as_u64().unwrap());
            assert_eq!(error.to_openai_json(), case["expected_client"]["body"], "refusal body");
            return;
        }
    };
    assert_eq!(upstream.path, expected["path"].as_str().unwrap(), "upstream path");
    let wanted = expected["headers"].as_object().unwrap();
    for (name, value) in wanted {
        let sent = upstream.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(sent, value.as_str(), "upstream header {name}");
    }
    let names: Vec<&str> = upstream.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.iter().all(|n| wanted.contains_key(*n)), "unexpected upstream headers in {names:?}");
    let sent_text = format!("{:?}", upstream.headers);
    let secret = provider.settings.aws.as_ref().unwrap().secret_access_key.as_str();
    assert!(!sent_text.contains(secret), "the secret key went upstream");
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
    let usage = if let Some(frames) = response.get("event_stream") {
        assert_eq!(
            response["headers"]["content-type"].as_str(),
            Some(adapter.stream_decoder(1).content_type()),
            "the gateway decodes a stream of the decoder's type only"
        );
        let stream = encoded_stream(frames);
        let expected_events = client["sse"].as_array().unwrap();
        let compare = |bytes: Vec<u8>, how: &str| {
            let actual = client_events(&bytes);
            assert_eq!(actual.len(), expected_events.len(), "{how}: number of client events: {actual:#?}");
            for (i, (actual, expected)) in actual.into_iter().zip(expected_events).enumerate() {
                assert_eq!(
                    comparable(actual, expected),
                    without_created(expected.clone()),
                    "{how}: event {i}"
                );
            }
        };
        let include_usage = request.wants_stream_usage();
        compare(client_stream(adapter.as_ref(), &target, include_usage, &[&stream]), "whole");
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            compare(
                client_stream(adapter.as_ref(), &target, include_usage, &[a, b]),
                &format!("split at {cut}"),
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        compare(client_stream(adapter.as_ref(), &target, include_usage, &bytes), "1-byte pieces");
        stream_usage(adapter.as_ref(), &target, &stream)
    } else {
        let translated = adapter.chat_response(&body_bytes(&response["body"]), &target).unwrap();
        let actual: Value = serde_json::from_slice(&translated.body).unwrap();
        let expected = &client["body"];
        assert_eq!(comparable(actual, expected), without_created(expected.clone()), "client body");
        translated.usage
    };
    if let Some(expected_usage) = case.get("expected_usage") {
        assert_eq!(&serde_json::to_value(usage).unwrap(), expected_usage, "usage");
    }
}

/// The usage the translator reports once the whole stream went through (what budgets settle from).
fn stream_usage(adapter: &dyn Adapter, target: &Target<'_>, stream: &[u8]) -> crate::Usage {
    let mut decoder = adapter.stream_decoder(1 << 20);
    let mut translator = adapter.stream_translator(target);
    let mut sink = ChunkSink::new(target);
    let _ = decoder.push_events(stream, &mut |event| translator.on_event(event, &mut sink));
    translator.usage()
}

#[test]
fn every_bedrock_fixture_passes() {
    let config = config();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("config.json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 16, "expected the full set of cases, found {}", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let case = read_json(path);
        if let Err(panic) = std::panic::catch_unwind(|| run_case(&config, &case)) {
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

/// The truncated-stream and exception cases end with the error event the gateway writes.
#[test]
fn a_cut_stream_ends_with_the_truncation_error() {
    let error = AiError::TruncatedStream.to_openai_json();
    let case = read_json(&fixtures().join("stream_truncated.json"));
    let events = case["expected_client"]["sse"].as_array().unwrap();
    assert_eq!(events[events.len() - 2], error);
}

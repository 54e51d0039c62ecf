//! Runs every case under `tests/fixtures/<provider>/` (see FIXTURES.md) through the gateway: the client
//! request to the upstream request, and the upstream answer back to the client, streams (SSE text, or AWS
//! event-stream frames for Bedrock) fed whole, split in two at every byte boundary, and one byte at a time.

// Test helpers outside #[test] functions: a failure with context is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tollgate_ai::messages::{is_anthropic_path, to_anthropic_reply};
use tollgate_ai::providers::event_stream_encode;
use tollgate_ai::{Ai, AiBody, AiHead, AiRequest, AiResponseHead, AiStream, Caller, RawAiConfig};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{ConfigPath, Headers, LocalReply, RequestHead, ResponseHead};

const CLIENT_KEY: &str = "client-key";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn everyone(_: &str) -> bool {
    true
}

fn caller() -> Caller<'static> {
    Caller { consumer: Some("conformance"), may_use_model: &everyone }
}

/// A top-level `created` is ignored everywhere, a top-level `id` when the expected object has none.
fn normalise(mut actual: Value, expected: &Value) -> Value {
    if let Some(object) = actual.as_object_mut() {
        object.remove("created");
        if expected.get("id").is_none() {
            object.remove("id");
        }
    }
    actual
}

fn without_created(mut expected: Value) -> Value {
    if let Some(object) = expected.as_object_mut() {
        object.remove("created");
    }
    expected
}

fn body_bytes(body: &Value) -> Vec<u8> {
    match body {
        Value::String(text) => text.clone().into_bytes(),
        Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    }
}

struct Case {
    name: String,
    case: Value,
}

impl Case {
    fn field(&self, pointer: &str) -> &Value {
        self.case.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// Sends the request through head and body; `None` when the gateway refused it (and that was expected).
    fn request(&self, ai: &Ai, stream: &mut AiStream, host: &MemoryHost) -> Option<()> {
        let name = &self.name;
        let path = self.field("/path").as_str().unwrap_or("/v1/chat/completions");
        let head = RequestHead::from_pairs([
            (":method", "POST"),
            (":path", path),
            (":authority", "gateway.example"),
            ("authorization", &format!("Bearer {CLIENT_KEY}")),
            ("x-tollgate-cluster", "client-choice"),
            ("accept-encoding", "gzip"),
            // Ids a provider leaves to Tollgate derive from the request id; every fixture was written for "test".
            ("x-request-id", "test"),
        ]);
        assert_eq!(ai.on_request_head(stream, &head, &caller()), AiHead::NeedBody, "{name}");
        let body = self.field("/request").to_string();
        let (edits, upstream_body) = match ai.on_request_body(stream, body.as_bytes(), host.ports()) {
            Ok(AiRequest::Upstream { head, body }) => (head, body),
            // Answered by the gateway (count_tokens estimated), or refused: the client's reply, in the shape
            // of the API it speaks.
            Ok(AiRequest::Answer(reply)) => {
                self.check_reply(&reply);
                return None;
            }
            Err(error) => {
                let reply = error.to_reply();
                let reply = if is_anthropic_path(path) { to_anthropic_reply(reply) } else { reply };
                self.check_reply(&reply);
                return None;
            }
        };
        let mut headers = head.headers.clone();
        headers.set(":path", path);
        edits.apply_to(&mut headers);
        let expected = self.field("/expected_upstream");
        assert_eq!(headers.get(":path"), expected["path"].as_str(), "{name}: upstream path");
        assert!(headers.get(":authority").is_some_and(|a| a != "gateway.example"), "{name}: authority");
        if let Some(wanted) = expected["headers"].as_object() {
            for (header, value) in wanted {
                assert_eq!(headers.get(header), value.as_str(), "{name}: upstream header {header}");
            }
        }
        assert_no_client_credential(name, &headers);
        let actual: Value = serde_json::from_slice(&upstream_body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(actual, expected["body"], "{name}: upstream body");
        Some(())
    }

    fn check_reply(&self, reply: &LocalReply) {
        let (name, expected) = (&self.name, self.field("/expected_client"));
        assert_eq!(reply.status, expected["status"], "{name}: status of a reply without upstream");
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(body, expected["body"], "{name}: body of a reply without upstream");
    }

    fn response_head(&self) -> ResponseHead {
        let upstream = self.field("/upstream_response");
        let status = upstream["status"].as_u64().unwrap_or(200).to_string();
        let mut pairs = vec![(":status".to_string(), status)];
        if let Some(headers) = upstream["headers"].as_object() {
            pairs.extend(headers.iter().map(|(n, v)| (n.clone(), v.as_str().unwrap_or("").to_string())));
        }
        ResponseHead::from_pairs(pairs)
    }

    fn expected_dropped(&self) -> String {
        let list = self.field("/expected_dropped").as_array().cloned().unwrap_or_default();
        list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
    }
}

fn assert_no_client_credential(name: &str, headers: &Headers) {
    for (header, value) in headers.iter() {
        assert!(!value.contains(CLIENT_KEY), "{name}: the client's key went upstream in {header}");
    }
    assert_eq!(headers.get_all("x-tollgate-cluster").count(), 1, "{name}: one cluster header");
    assert_ne!(headers.get("x-tollgate-cluster"), Some("client-choice"), "{name}: client picked the cluster");
    assert_eq!(headers.get("accept-encoding"), None, "{name}: accept-encoding forwarded");
}

fn dropped_header(edits: &tollgate_core::HeaderEdits) -> String {
    edits.set.iter().find(|(n, _)| n == "x-tollgate-dropped").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Feeds the stream in these pieces and returns the client's events (JSON, or the string `[DONE]`).
fn stream_events(ai: &Ai, case: &Case, host: &MemoryHost, pieces: &[&[u8]]) -> (Vec<Value>, AiStream) {
    let name = &case.name;
    let mut stream = AiStream::default();
    case.request(ai, &mut stream, host).unwrap_or_else(|| panic!("{name}: refused a stream request"));
    let AiResponseHead::Stream(edits) = ai.on_response_head(&mut stream, &case.response_head(), host.ports())
    else {
        panic!("{name}: an SSE answer was not streamed")
    };
    assert_eq!(dropped_header(&edits), case.expected_dropped(), "{name}: x-tollgate-dropped");
    let mut out = Vec::new();
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        match ai.on_response_body(&mut stream, piece, i == last, host.ports()) {
            AiBody::Continue { body: Some(bytes), .. } => out.extend(bytes),
            other => panic!("{name}: a stream chunk gave {other:?}"),
        }
    }
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{name}: client stream not UTF-8: {e}"));
    let events = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            // Anthropic's events are named: the name must be the data's `type`.
            let (named, event) = match event.strip_prefix("event: ").and_then(|e| e.split_once('\n')) {
                Some((named, rest)) => (Some(named), rest),
                None => (None, event),
            };
            let data =
                event.strip_prefix("data: ").unwrap_or_else(|| panic!("{name}: not a data event {event:?}"));
            let data = serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()));
            if let Some(named) = named {
                assert_eq!(data["type"], named, "{name}: event name and data type");
            }
            data
        })
        .collect();
    (events, stream)
}

/// The upstream's stream bytes: SSE text as it is, or AWS event-stream frames (`{"event": type, "data":
/// payload}` or `{"exception": type, "data": payload}`, optionally `"truncate": n` bytes off the end) encoded.
fn upstream_stream(case: &Case) -> Vec<u8> {
    if let Some(text) = case.field("/upstream_response/sse").as_str() {
        return text.as_bytes().to_vec();
    }
    let frames = case.field("/upstream_response/event_stream");
    event_stream_encode::frames(frames.as_array().map(Vec::as_slice).unwrap_or_default())
}

fn check_stream(ai: &Ai, case: &Case, host: &MemoryHost) -> AiStream {
    let name = &case.name;
    let sse = upstream_stream(case);
    let expected: Vec<Value> = case.field("/expected_client/sse").as_array().cloned().unwrap_or_default();
    let compare = |events: Vec<Value>, how: &str| {
        assert_eq!(events.len(), expected.len(), "{name} ({how}): event count\n{events:#?}");
        for (i, (actual, wanted)) in events.into_iter().zip(&expected).enumerate() {
            assert_eq!(
                normalise(actual, wanted),
                without_created(wanted.clone()),
                "{name} ({how}): event {i}"
            );
        }
    };
    let (events, stream) = stream_events(ai, case, host, &[&sse]);
    compare(events, "whole");
    for cut in 0..=sse.len() {
        let (a, b) = sse.split_at(cut);
        compare(stream_events(ai, case, host, &[a, b]).0, &format!("split at {cut}"));
    }
    let bytes: Vec<&[u8]> = sse.chunks(1).collect();
    compare(stream_events(ai, case, host, &bytes).0, "1-byte pieces");
    stream
}

fn check_buffered(ai: &Ai, case: &Case, host: &MemoryHost) -> Option<AiStream> {
    let name = &case.name;
    let mut stream = AiStream::default();
    case.request(ai, &mut stream, host)?;
    let head = case.response_head();
    assert_eq!(ai.on_response_head(&mut stream, &head, host.ports()), AiResponseHead::AwaitBody, "{name}");
    let body = body_bytes(case.field("/upstream_response/body"));
    // No replacement body: the answer goes to the client as it came (Anthropic's, to an Anthropic client).
    let AiBody::Continue { head: edits, body: out } =
        ai.on_response_body(&mut stream, &body, true, host.ports())
    else {
        panic!("{name}: no answer for a whole body")
    };
    let out = out.unwrap_or(body);
    let status = edits
        .set
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .unwrap_or(head.status);
    let expected = case.field("/expected_client");
    assert_eq!(Value::from(status), expected["status"], "{name}: client status");
    assert_eq!(dropped_header(&edits), case.expected_dropped(), "{name}: x-tollgate-dropped");
    let actual: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{name}: client body: {e}"));
    assert_eq!(
        normalise(actual, &expected["body"]),
        without_created(expected["body"].clone()),
        "{name}: client body"
    );
    Some(stream)
}

#[test]
fn every_fixture_passes_through_the_gateway() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("provider.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let mut cases_run = 0;
    for dir in dirs {
        let provider = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let raw: RawAiConfig = serde_json::from_value(read_json(&dir.join("provider.json")))
            .unwrap_or_else(|e| panic!("{provider}/provider.json: {e}"));
        let ai = Ai::compile(raw, &ConfigPath::root().field("ai"))
            .unwrap_or_else(|e| panic!("{provider}/provider.json: {e}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|f| f.extension().is_some_and(|e| e == "json") && !f.ends_with("provider.json"));
        files.sort();
        for file in files {
            let name =
                format!("{provider}/{}", file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
            let case = Case { name, case: read_json(&file) };
            let host = MemoryHost::default();
            let streamed = case.field("/upstream_response/sse").is_string()
                || case.field("/upstream_response/event_stream").is_array();
            let stream = if streamed {
                Some(check_stream(&ai, &case, &host))
            } else {
                check_buffered(&ai, &case, &host)
            };
            if let (Some(stream), Some(expected)) = (stream, case.case.get("expected_usage")) {
                let usage = stream.usage().map(|u| serde_json::to_value(u).unwrap_or_default());
                assert_eq!(usage.as_ref(), Some(expected), "{}: usage", case.name);
            }
            cases_run += 1;
        }
    }
    eprintln!("{cases_run} conformance cases");
}

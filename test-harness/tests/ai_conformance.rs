//! The conformance corpus (`plugins/ai/tests/fixtures/<provider>/`, format in `plugins/ai/FIXTURES.md`) run
//! through the real `dist/tollgate.wasm` in the wasmtime host, with `{"ai": <provider.json>}` as the config.
//! Each case's request goes in with the client's own credential (and `x-request-id: test`, as Envoy adds one);
//! the test checks what the upstream received (path, authority, headers, JSON body, the cluster header, no client
//! credential), plays the case's upstream response, and checks what the client got. Streams are also delivered split at every byte boundary into two
//! chunks, and one byte at a time, and must give the same client events each time.
//!
//! One test per provider directory, so they run in parallel; every failing case is named in the message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tollgate_harness::host::{Exchange, Host, Request, Response, Vm};

const CLIENT_CREDENTIAL: &str = "Bearer client-key";
const CLUSTER_HEADER: &str = "x-tollgate-cluster";
/// The provider directories this file has a test for; a new directory must be added here.
const PROVIDERS: [&str; 8] = [
    "anthropic",
    "anthropic_ingress",
    "azure",
    "bedrock",
    "gemini",
    "mistral",
    "openai",
    "openai_compatible",
];
/// Headers that carry the signing instant, which the fixtures fix (their clock is 1,700,000,000) and this
/// host's clock does not (it starts at 2024-01-01): checked for their shape here, for their value by the
/// native runner (`plugins/ai/tests/conformance.rs`).
const SIGNED_AT: [&str; 2] = ["x-amz-date", "authorization"];

fn fixtures() -> PathBuf {
    tollgate_harness::repo_root().join("plugins/ai/tests/fixtures")
}

#[test]
fn every_fixture_directory_has_a_test() {
    let Ok(entries) = std::fs::read_dir(fixtures()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            assert!(PROVIDERS.contains(&name.as_str()), "fixtures/{name}/ has no test in ai_conformance.rs");
        }
    }
}

#[test]
fn anthropic() {
    run_provider("anthropic");
}

#[test]
fn anthropic_ingress() {
    run_provider("anthropic_ingress");
}

#[test]
fn azure() {
    run_provider("azure");
}

#[test]
fn bedrock() {
    run_provider("bedrock");
}

#[test]
fn gemini() {
    run_provider("gemini");
}

#[test]
fn mistral() {
    run_provider("mistral");
}

#[test]
fn openai() {
    run_provider("openai");
}

#[test]
fn openai_compatible() {
    run_provider("openai_compatible");
}

/// Runs every case of one provider directory (none yet is not a failure: fixtures arrive over time).
fn run_provider(provider: &str) {
    let dir = fixtures().join(provider);
    let Ok(config) = std::fs::read_to_string(dir.join("provider.json")) else {
        eprintln!("fixtures/{provider}/provider.json does not exist yet: nothing to run");
        return;
    };
    let ai: Value =
        serde_json::from_str(&config).unwrap_or_else(|e| panic!("fixtures/{provider}/provider.json: {e}"));
    let host = Host::load(tollgate_harness::tollgate_wasm())
        .unwrap_or_else(|e| panic!("{e} (run ./build.sh build to make dist/tollgate.wasm)"));
    let config = serde_json::json!({ "ai": ai }).to_string();
    let mut vm = host
        .plugin(&config)
        .start()
        .unwrap_or_else(|e| panic!("fixtures/{provider}: the filter refused {{\"ai\": provider.json}}: {e}"));
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("provider.json"))
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for path in &cases {
        let name = format!("{provider}/{}", path.file_name().unwrap_or_default().to_string_lossy());
        if let Err(message) = run_case(&mut vm, &ai, path) {
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn run_case(vm: &mut Vm, ai: &Value, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let request = client_request(&case);
    let upstream = &case["upstream_response"];
    let frames = upstream
        .get("event_stream")
        .and_then(Value::as_array)
        .map(|frames| tollgate_ai::providers::event_stream_encode::frames(frames));
    let sse = upstream.get("sse").and_then(Value::as_str).map(|s| s.as_bytes().to_vec()).or(frames);
    let body: Vec<u8> = match (&sse, upstream.get("body")) {
        (Some(sse), _) => sse.clone(),
        (None, Some(Value::String(raw))) => raw.as_bytes().to_vec(),
        (None, Some(Value::Null) | None) => Vec::new(),
        (None, Some(json)) => json.to_string().into_bytes(),
    };
    let respond = |chunks: Vec<&[u8]>| {
        let mut response = Response::status(upstream["status"].as_u64().unwrap_or(200) as u16);
        for (name, value) in upstream.get("headers").and_then(Value::as_object).into_iter().flatten() {
            response = response.header(name, value.as_str().unwrap_or_default());
        }
        response.body_chunks(chunks)
    };
    let run = |vm: &mut Vm, chunks: Vec<&[u8]>| -> Result<Exchange, String> {
        vm.send(request.clone())
            .respond_with(respond(chunks))
            .run()
            .map_err(|e| format!("the host failed: {e}"))
    };

    let exchange = run(vm, vec![&body])?;
    check_upstream(&case, ai, &exchange)?;
    if let (Some(_), Some([provider])) =
        (&exchange.upstream, ai.get("providers").and_then(Value::as_array).map(Vec::as_slice))
    {
        let name = provider["name"].as_str().unwrap_or_default();
        let got = exchange.downstream.header("x-tollgate-provider");
        if got != Some(name) {
            return Err(format!("x-tollgate-provider {got:?} on the client response, expected {name:?}"));
        }
    }
    check_client(&case, &exchange).map_err(|e| format!("{e}\n  (upstream body delivered in one chunk)"))?;

    if sse.is_some() {
        for at in 1..body.len() {
            let (head, tail) = body.split_at(at);
            let exchange = run(vm, vec![head, tail])?;
            check_client(&case, &exchange).map_err(|e| {
                let shown = String::from_utf8_lossy(head);
                let shown = shown.get(shown.len().saturating_sub(40)..).unwrap_or_default();
                format!("{e}\n  (upstream body split in two at byte {at}, after ...{shown:?})")
            })?;
        }
        let exchange = run(vm, body.chunks(1).collect())?;
        check_client(&case, &exchange)
            .map_err(|e| format!("{e}\n  (upstream body delivered one byte at a time)"))?;
    } else if body.len() > 1 {
        let (head, tail) = body.split_at(body.len() / 2);
        let exchange = run(vm, vec![head, tail])?;
        check_client(&case, &exchange).map_err(|e| format!("{e}\n  (upstream body split in two halves)"))?;
    }
    Ok(())
}

fn client_request(case: &Value) -> Request {
    let path = case.get("path").and_then(Value::as_str).unwrap_or("/v1/chat/completions");
    let method = case.get("method").and_then(Value::as_str).unwrap_or(if path == "/v1/models" {
        "GET"
    } else {
        "POST"
    });
    // Envoy gives every request an x-request-id; the fixtures' made-up ids (`call_test_0`) are keyed by it.
    let mut request = Request::new(method, path)
        .authority("tollgate.test")
        .header("authorization", CLIENT_CREDENTIAL)
        .header("x-request-id", "test");
    if method == "POST" {
        request = request.header("content-type", "application/json").body(case["request"].to_string());
    }
    request
}

fn check_upstream(case: &Value, ai: &Value, exchange: &Exchange) -> Result<(), String> {
    let Some(expected) = case.get("expected_upstream").filter(|e| !e.is_null()) else {
        return match &exchange.upstream {
            None => Ok(()),
            Some(sent) => Err(format!(
                "expected no upstream request, but the upstream got {} {}",
                sent.method, sent.path
            )),
        };
    };
    let Some(sent) = &exchange.upstream else {
        return Err(format!(
            "the request never reached the upstream; the client got {} {}",
            exchange.downstream.status,
            exchange.downstream.body_str()
        ));
    };
    if let Some(path) = expected.get("path").and_then(Value::as_str) {
        if sent.path != path {
            return Err(format!("upstream path {:?}, expected {path:?}", sent.path));
        }
    }
    for (name, value) in expected.get("headers").and_then(Value::as_object).into_iter().flatten() {
        let value = value.as_str().unwrap_or_default();
        if SIGNED_AT.contains(&name.as_str()) && value.contains("20231114") {
            signed_at(name, sent.header(name).unwrap_or_default(), value)?;
            continue;
        }
        if sent.header(name) != Some(value) {
            return Err(format!(
                "upstream header {name}: {:?}, expected {value:?}\n  sent: {:?}",
                sent.header(name),
                sent.headers
            ));
        }
    }
    if let Some((name, value)) = sent.headers.iter().find(|(_, v)| v.contains("client-key")) {
        return Err(format!("the client's credential reached the upstream in {name}: {value}"));
    }
    if let Some(body) = expected.get("body") {
        let got: Value = serde_json::from_str(sent.body_str())
            .map_err(|e| format!("upstream body is not JSON ({e}): {}", sent.body_str()))?;
        if &got != body {
            return Err(format!("upstream body differs\n  got:      {got}\n  expected: {body}"));
        }
    }
    // With one provider, the cluster and authority it must be sent to are known.
    if let Some([provider]) = ai.get("providers").and_then(Value::as_array).map(Vec::as_slice) {
        let cluster = provider["cluster"].as_str().unwrap_or_default();
        if sent.header(CLUSTER_HEADER) != Some(cluster) {
            return Err(format!("{CLUSTER_HEADER}: {:?}, expected {cluster:?}", sent.header(CLUSTER_HEADER)));
        }
        let host = provider.get("base_url").and_then(Value::as_str).map(|url| {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            rest.split('/').next().unwrap_or_default().to_owned()
        });
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            if sent.authority != host {
                return Err(format!(":authority {:?}, expected {host:?} (from base_url)", sent.authority));
            }
        }
    }
    Ok(())
}

/// A header that carries the signing instant: `x-amz-date` as a basic ISO 8601 instant; `authorization`
/// with the same credential, region, service, signed headers, and a signature, the date aside.
fn signed_at(name: &str, got: &str, want: &str) -> Result<(), String> {
    let ok = if name == "x-amz-date" {
        got.len() == 16 && got.as_bytes().get(8) == Some(&b'T') && got.ends_with('Z')
    } else {
        let unsigned = |v: &str| {
            let v = v.split(", Signature=").next().unwrap_or_default();
            let mut parts: Vec<&str> = v.split('/').collect();
            if let Some(date) = parts.get_mut(1) {
                *date = "<date>";
            }
            parts.join("/")
        };
        let signature = got.split(", Signature=").nth(1).unwrap_or_default();
        unsigned(got) == unsigned(want)
            && signature.len() == 64
            && signature.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if ok {
        Ok(())
    } else {
        Err(format!("upstream header {name}: {got:?}, expected the shape of {want:?}"))
    }
}

fn check_client(case: &Value, exchange: &Exchange) -> Result<(), String> {
    let expected = &case["expected_client"];
    let got = &exchange.downstream;
    let status = expected["status"].as_u64().unwrap_or(200);
    if u64::from(got.status) != status {
        return Err(format!("client status {}, expected {status}; body: {}", got.status, got.body_str()));
    }
    let dropped: Vec<&str> = got
        .header("x-tollgate-dropped")
        .map(|h| h.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let want_dropped: Vec<&str> = case
        .get("expected_dropped")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if dropped != want_dropped {
        return Err(format!("x-tollgate-dropped {dropped:?}, expected {want_dropped:?}"));
    }
    if let Some(events) = expected.get("sse").and_then(Value::as_array) {
        let got_events = sse_events(got.body_str())?;
        if got_events.len() != events.len() {
            return Err(format!(
                "{} client events, expected {}\n  got:      {}\n  expected: {}",
                got_events.len(),
                events.len(),
                Value::Array(got_events.clone()),
                Value::Array(events.clone())
            ));
        }
        for (i, (got, want)) in got_events.iter().zip(events).enumerate() {
            if !same(got, want) {
                return Err(format!("client event {i} differs\n  got:      {got}\n  expected: {want}"));
            }
        }
        return Ok(());
    }
    if let Some(want) = expected.get("body") {
        let got: Value = serde_json::from_str(got.body_str())
            .map_err(|e| format!("client body is not JSON ({e}): {}", got.body_str()))?;
        if !same(&got, want) {
            return Err(format!("client body differs\n  got:      {got}\n  expected: {want}"));
        }
    }
    Ok(())
}

/// The data of each event in a client's SSE body: JSON values, and `"[DONE]"` as a string.
fn sse_events(body: &str) -> Result<Vec<Value>, String> {
    let normalised = body.replace("\r\n", "\n");
    let mut events = Vec::new();
    for block in normalised.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        let data = data.join("\n");
        if data == "[DONE]" {
            events.push(Value::String(data));
        } else {
            events.push(
                serde_json::from_str(&data).map_err(|e| format!("client event is not JSON ({e}): {data}"))?,
            );
        }
    }
    if !body.is_empty() && !normalised.ends_with("\n\n") {
        return Err(format!(
            "the client stream does not end with a complete event: ...{:?}",
            body.get(body.len().saturating_sub(60)..).unwrap_or(body)
        ));
    }
    Ok(events)
}

/// FIXTURES.md's comparison: exact, except a top-level `created` is ignored, and a top-level `id` when the
/// expected object has none.
fn same(got: &Value, want: &Value) -> bool {
    let strip = |value: &Value, drop_id: bool| -> Value {
        match value {
            Value::Object(map) => {
                let kept: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| k.as_str() != "created" && !(drop_id && k.as_str() == "id"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Value::Object(kept)
            }
            other => other.clone(),
        }
    };
    let drop_id = want.as_object().is_some_and(|m| !m.contains_key("id"));
    strip(got, drop_id) == strip(want, drop_id)
}

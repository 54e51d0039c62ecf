//! The never-trap property: over 100,000 generated and mutated requests through the real `dist/tollgate.wasm`
//! with every section of the config on (API keys and an inline-JWKS JWT provider, request, token and budget
//! rules with prices, OpenAI, Anthropic and Gemini providers, prompt endpoints, one with JSON output, the
//! trace), not one traps the VM, and every answer is a well-formed HTTP response: a status in 100..=599,
//! header fields a proxy could send, and a JSON body on each of Tollgate's own error replies.
//!
//! Seeds come from the AI conformance fixtures (`plugins/ai/tests/fixtures/{openai,anthropic,gemini}`) and
//! the prompt endpoints below; `never_trap_support/inputs.rs` damages them and makes the request heads. Each
//! shard is one worker VM that serves thousands of requests in a row and is restarted (with a fresh host)
//! every `RESTART_EVERY` cases.
//! The run is deterministic: shard `i` always draws from seed `SEED + i`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

#[path = "never_trap_support/cases.rs"]
mod cases;
#[path = "auth_support/idp.rs"]
mod idp;
#[path = "never_trap_support/inputs.rs"]
mod inputs;
#[path = "never_trap_support/world.rs"]
mod world;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tollgate_harness::host::{Exchange, Host, HostError, Reply, Request, Response, Vm};

use cases::{fixture_response, generate, openai_answer, Case};
use world::{world, Category, World};

const SEED: u64 = 0x7011_6a7e;
const SHARDS: u64 = 2;
const CASES_PER_SHARD: usize = 51_000;
const RESTART_EVERY: usize = 3_000;

#[test]
fn the_full_pipeline_config_loads_and_serves() {
    let world = world();
    let host = Host::load(tollgate_harness::tollgate_wasm()).expect("dist/tollgate.wasm (run ./build.sh)");
    let mut vm = host.plugin(&world.config).start().unwrap_or_else(|e| panic!("config refused: {e}"));
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    for credential in [format!("Bearer {}", world.alice), format!("Bearer {}", world.tokens[0])] {
        let ex = vm
            .send(Request::post("/v1/chat/completions").header("authorization", &credential).body(&chat))
            .respond_with(openai_answer("hello"))
            .run()
            .unwrap();
        assert_eq!(ex.downstream.status, 200, "{}", ex.downstream.body_str());
        let up = ex.upstream.unwrap();
        assert_eq!(up.header("authorization"), Some("Bearer test-provider-key"));
    }
    let ex = vm.send(Request::get("/.well-known/tollgate/openapi.json")).run().unwrap();
    assert_eq!(ex.downstream.status, 200);
}

#[test]
fn over_100k_generated_requests_never_trap_and_always_get_a_well_formed_answer() {
    let world = &world();
    let started = Instant::now();
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..SHARDS).map(|shard| scope.spawn(move || run_shard(world, SEED + shard))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Report::default();
    for report in reports {
        total.merge(report);
    }
    let elapsed = started.elapsed();
    let cases: u64 = total.per_category.values().map(|s| s.cases).sum();
    println!(
        "never_trap: {cases} cases in {:.1}s on {SHARDS} worker VMs ({} VM starts), {} failures of {} kinds",
        elapsed.as_secs_f64(),
        total.vm_starts,
        total.failures.values().map(|(n, _)| n).sum::<u64>(),
        total.failures.len()
    );
    for (category, stats) in &total.per_category {
        println!(
            "never_trap: {category:?}: {} cases, {} reached the provider, {} local replies, statuses {:?}, {:.1}s in the VM",
            stats.cases,
            stats.upstream,
            stats.local,
            stats.statuses,
            stats.run.as_secs_f64()
        );
    }
    assert!(cases >= 100_000, "only {cases} cases ran");
    let head = &total.per_category[&Category::Head];
    let sse = &total.per_category[&Category::Sse];
    assert!(head.statuses.contains_key(&200) && head.statuses.contains_key(&401), "{:?}", head.statuses);
    assert!(sse.upstream * 2 > sse.cases, "most stream cases must reach the provider: {}", sse.upstream);
    assert!(
        total.failures.is_empty(),
        "inputs trapped the VM or got a malformed answer; each kind, its count and its first input:\n\n{}",
        total
            .failures
            .iter()
            .map(|(kind, (n, first))| format!("{n} x {kind}\n{first}"))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[derive(Default)]
struct Stats {
    cases: u64,
    upstream: u64,
    local: u64,
    statuses: BTreeMap<u16, u64>,
    run: Duration,
}

#[derive(Default)]
struct Report {
    per_category: BTreeMap<Category, Stats>,
    vm_starts: u64,
    /// By kind (the problem with digits masked): how many, and the first input that showed it.
    failures: BTreeMap<String, (u64, String)>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        for (category, s) in other.per_category {
            let mine = self.per_category.entry(category).or_default();
            mine.cases += s.cases;
            mine.upstream += s.upstream;
            mine.local += s.local;
            mine.run += s.run;
            for (status, n) in s.statuses {
                *mine.statuses.entry(status).or_default() += n;
            }
        }
        self.vm_starts += other.vm_starts;
        for (kind, (n, first)) in other.failures {
            self.failures.entry(kind).or_insert((0, first)).0 += n;
        }
    }
}

/// A worker VM with a host of its own (so shared data, metrics and call records stay bounded) and the queue
/// its outbound calls are answered from.
struct Worker {
    vm: Vm,
    calls: Arc<Mutex<VecDeque<Reply>>>,
}

fn start(world: &World) -> Worker {
    let host = Host::load(tollgate_harness::tollgate_wasm()).expect("dist/tollgate.wasm (run ./build.sh)");
    let calls: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
    let queue = Arc::clone(&calls);
    host.respond_to_calls(move |_| queue.lock().unwrap().pop_front());
    let vm = host.plugin(&world.config).start().unwrap_or_else(|e| panic!("config refused: {e}"));
    Worker { vm, calls }
}

fn run_shard(world: &World, seed: u64) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = Report::default();
    let mut worker = start(world);
    report.vm_starts += 1;
    for i in 0..CASES_PER_SHARD {
        if i > 0 && i % RESTART_EVERY == 0 {
            worker = start(world);
            report.vm_starts += 1;
        }
        let case = generate(&mut rng, world);
        let started = Instant::now();
        *worker.calls.lock().unwrap() = case.calls.iter().cloned().collect();
        worker.vm.clear_logs();
        let outcome = worker.vm.send(case.request.clone()).respond_with(case.response.clone()).run();
        let stats = report.per_category.entry(case.category).or_default();
        stats.run += started.elapsed();
        stats.cases += 1;
        let dead = matches!(outcome, Err(HostError::Trap { .. } | HostError::Dead(_)));
        let verdict = match outcome {
            Ok(ex) => {
                stats.upstream += u64::from(ex.upstream.is_some() || !ex.calls.is_empty());
                stats.local += u64::from(ex.local_reply_details.is_some());
                *stats.statuses.entry(ex.downstream.status).or_default() += 1;
                well_formed(&ex, &case.request.path)
            }
            Err(e) => Err(format!("{e}")),
        };
        if let Err(problem) = verdict {
            let head = problem.split(['(', '\n']).next().unwrap_or_default();
            let kind: String =
                head.chars().take(100).map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
            let entry =
                report.failures.entry(format!("{:?}: {}", case.category, kind.trim())).or_insert_with(|| {
                    (0, format!("seed {seed} case {i}: {problem}\ninput: {}", describe(&case)))
                });
            entry.0 += 1;
        }
        if dead {
            worker = start(world);
            report.vm_starts += 1;
        }
        let _ = worker.vm.advance(Duration::from_millis(rng.gen_range(0..1500)));
    }
    report
}

/// A status a client can read, header fields a proxy can send, and JSON on Tollgate's own error replies.
/// `path` is the client's: `/v1/messages` clients speak Anthropic's API, whose streams end differently.
fn well_formed(ex: &Exchange, path: &str) -> Result<(), String> {
    let d = &ex.downstream;
    if !ex.complete {
        return Err("the stream did not finish".into());
    }
    if d.reset {
        return Err(format!("the stream was reset (status {})", d.status));
    }
    if !(100..=599).contains(&d.status) {
        return Err(format!("status {}", d.status));
    }
    for (name, value) in &d.headers {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(format!("header name {name:?}"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) || value.contains('\u{fffd}') {
            return Err(format!("header {name}: {value:?}"));
        }
    }
    if let Some(reason) = d.header("x-tollgate-reason") {
        if d.body.is_empty() {
            return Err(format!("{reason} reply with an empty body (status {})", d.status));
        }
        let body: Value = serde_json::from_slice(d.body.as_bytes())
            .map_err(|e| format!("{reason} reply body is not JSON ({e}): {:?}", d.body_str()))?;
        if body.get("error").is_none() {
            return Err(format!("{reason} reply has no error object: {body}"));
        }
    }
    let stream = d.header("content-type").is_some_and(|ct| ct.starts_with("text/event-stream"));
    if stream && d.status == 200 && ex.upstream.as_ref().is_some_and(|u| u.path.starts_with("/v1")) {
        let body = d.body.as_bytes();
        if body.is_empty() {
            return Err("an empty event stream: no error event, no data: [DONE]".into());
        }
        // An Anthropic-format client's stream ends with message_stop or an error event.
        if path.starts_with("/v1/messages") {
            let last = d.body_str().trim_end().rsplit("\n\n").next().unwrap_or_default().to_string();
            if !(last.starts_with("event: message_stop\n") || last.starts_with("event: error\n")) {
                return Err(format!(
                    "an Anthropic event stream that does not end with message_stop or error ({last:?})"
                ));
            }
            return Ok(());
        }
        if !body.ends_with(b"data: [DONE]\n\n") {
            let tail = String::from_utf8_lossy(&body[body.len().saturating_sub(200)..]).into_owned();
            return Err(format!("an event stream that does not end with data: [DONE] (tail {tail:?})"));
        }
    }
    Ok(())
}

fn describe(case: &Case) -> String {
    let clip = |s: String| {
        if s.len() <= 1500 {
            return s;
        }
        let cut = (0..=1500).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}...[{} bytes in all]", &s[..cut], s.len())
    };
    format!(
        "request {}\nupstream response {}\ncall answers {:?}",
        clip(serde_json::to_string(&case.request).unwrap_or_default()),
        clip(serde_json::to_string(&case.response).unwrap_or_default()),
        case.calls.len()
    )
}

/// Found by the property test: a provider answer whose headers end the stream (no body, as with
/// `content-length: 0`) has no body buffer for Tollgate's translation to go into. The filter now answers with a
/// local reply carrying the edited head and the body (an error, or a stream's error event and `[DONE]`).
#[test]
fn a_provider_answer_without_a_body_still_gets_a_complete_answer() {
    let world = world();
    let host = Host::load(tollgate_harness::tollgate_wasm()).unwrap();
    let mut vm = host.plugin(&world.config).start().unwrap();
    let key = format!("Bearer {}", world.alice);
    let mut problems = Vec::new();
    for (stream, status, content_type) in
        [(false, 200, "application/json"), (false, 401, "application/json"), (true, 200, "text/event-stream")]
    {
        let chat =
            json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
        let ex = vm
            .send(Request::post("/v1/chat/completions").header("authorization", &key).body(chat.to_string()))
            .respond_with(Response::status(status).header("content-type", content_type))
            .run()
            .unwrap();
        if let Err(problem) = well_formed(&ex, "/v1/chat/completions") {
            problems.push(format!("upstream {status} {content_type} with no body: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Found by the property test: Tollgate had no trailers callbacks, so an AI request whose body is followed by
/// trailers (HTTP/2, gRPC-style clients) never saw its body end, and neither did a provider answer with
/// trailers. Trailers now end the body phase as a last chunk does.
#[test]
fn an_ai_request_or_answer_with_trailers_still_gets_an_answer() {
    let world = world();
    let host = Host::load(tollgate_harness::tollgate_wasm()).unwrap();
    let mut vm = host.plugin(&world.config).start().unwrap();
    let key = format!("Bearer {}", world.alice);
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let request = || Request::post("/v1/chat/completions").header("authorization", &key).body(&chat);
    // anthropic/stream_text_usage.json: a text stream from Anthropic, translated chunk by chunk.
    let stream = world.fixtures.iter().find(|f| f.sse.as_deref().is_some_and(|s| s.contains("msg_01stream")));
    let stream = stream.unwrap();
    // gemini/stream_text_usage.json: the last candidate's finishReason ends the client's stream before the
    // upstream's end of stream, which comes with the trailers.
    let gemini = world
        .fixtures
        .iter()
        .find(|f| f.sse.as_deref().is_some_and(|s| s.contains("\"responseId\":\"resp-stream\"")));
    let gemini = gemini.unwrap();
    let mut problems = Vec::new();
    for (what, request, response, expected) in [
        ("request trailers", request().trailers([("x-checksum", "1")]), openai_answer("hello"), "hello"),
        (
            "gemini stream trailers",
            fixture_request_of(gemini, &key),
            fixture_response(gemini).trailers([("x-checksum", "1")]),
            "\"content\":\"lo\"",
        ),
        ("response trailers", request(), openai_answer("hello").trailers([("x-checksum", "1")]), "hello"),
        (
            "stream trailers",
            fixture_request_of(stream, &key).trailers([("x-checksum", "1")]),
            fixture_response(stream).trailers([("x-checksum", "1")]),
            "data: [DONE]",
        ),
    ] {
        let path = request.path.clone();
        match vm.send(request).respond_with(response).run() {
            Ok(ex) => {
                if let Err(problem) = well_formed(&ex, &path) {
                    problems.push(format!("{what}: {problem}"));
                }
                let body = ex.downstream.body_str();
                if ex.downstream.status != 200 || !body.contains(expected) {
                    problems.push(format!("{what}: {} without {expected:?}: {body}", ex.downstream.status));
                }
            }
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }
    // The same stream cut before its finishReason, then trailers: the error event and `[DONE]` the end would
    // bring have no body left to go into (Envoy answers NotFound, which proxy-wasm's own set_buffer turned into
    // a panic). No trap; the events so far arrive; the VM serves the next request.
    let sse = gemini.sse.as_deref().unwrap();
    let cut = &sse[..sse.find("finishReason").unwrap()];
    let cut = cut[..cut.rfind("\r\n\r\n").unwrap() + 4].to_string(); // Gemini ends its events with CRLF CRLF
    let truncated = Response::status(200).header("content-type", "text/event-stream").body(cut);
    match vm
        .send(fixture_request_of(gemini, &key))
        .respond_with(truncated.trailers([("x-checksum", "1")]))
        .run()
    {
        Ok(ex) if ex.downstream.status == 200 && ex.downstream.body_str().contains("\"content\":\"Hel\"") => {
        }
        other => problems.push(format!("truncated gemini stream with trailers: {other:?}")),
    }
    match vm.send(request()).respond_with(openai_answer("after")).run() {
        Ok(ex) if ex.downstream.status == 200 => {}
        other => problems.push(format!("the next request: {other:?}")),
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The fixture's client request as sent, with the caller's credential.
fn fixture_request_of(fixture: &world::Fixture, credential: &str) -> Request {
    Request::post(&fixture.path).header("authorization", credential).body(fixture.request.to_string())
}

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

#[path = "auth_support/idp.rs"]
mod idp;
#[path = "never_trap_support/inputs.rs"]
mod inputs;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tollgate_harness::host::{Exchange, Host, HostError, Reply, Request, Response, Vm};

const SEED: u64 = 0x7011_6a7e;
const SHARDS: u64 = 2;
const CASES_PER_SHARD: usize = 51_000;
const RESTART_EVERY: usize = 3_000;
const MAX_EVENT_BYTES: usize = 32_768;
const MAX_REQUEST_BYTES: usize = 262_144;
const MAX_RESPONSE_BYTES: usize = 524_288;

/// Inputs are shaped for one part of the filter each; heads are the cheap bulk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    /// Request heads only: methods, paths, header fields, credentials; no body.
    Head,
    /// Chat and embeddings bodies, mutated; the upstream answers as the fixture says.
    Body,
    /// A fixture's request, with the provider's (non-stream) answer mutated.
    Upstream,
    /// A streaming fixture's request, with the provider's SSE stream damaged and re-chunked.
    Sse,
    /// Prompt endpoints: variables mutated, the provider calls the filter makes answered with damage.
    Prompt,
}

/// One conformance fixture: the client's request and what the provider answered.
struct Fixture {
    path: String,
    request: Value,
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    sse: Option<String>,
}

/// What every shard draws from: fixtures, credentials, and the config.
struct World {
    config: String,
    fixtures: Vec<Fixture>,
    streams: Vec<usize>,
    alice: String,
    bob: String,
    tokens: Vec<String>,
    hostile_tokens: Vec<String>,
}

fn fixtures() -> (Vec<Fixture>, Value) {
    let root = tollgate_harness::repo_root().join("plugins/ai/tests/fixtures");
    let mut fixtures = Vec::new();
    let (mut providers, mut models) = (Vec::new(), Vec::new());
    for provider in ["openai", "anthropic", "gemini"] {
        let dir = root.join(provider);
        let read = |p: &Path| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap();
        let ai = read(&dir.join("provider.json"));
        providers.extend(ai["providers"].as_array().unwrap().iter().cloned());
        models.extend(ai["models"].as_array().unwrap().iter().cloned());
        let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths.iter().filter(|p| !p.ends_with("provider.json")) {
            let case = read(path);
            let up = &case["upstream_response"];
            fixtures.push(Fixture {
                path: case["path"].as_str().unwrap_or("/v1/chat/completions").to_string(),
                request: case["request"].clone(),
                status: up["status"].as_u64().unwrap_or(200) as u16,
                headers: up["headers"]
                    .as_object()
                    .map(|h| {
                        h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect()
                    })
                    .unwrap_or_default(),
                body: up.get("body").cloned(),
                sse: up["sse"].as_str().map(str::to_string),
            });
        }
    }
    let limits = json!({"max_request_bytes": MAX_REQUEST_BYTES, "max_response_bytes": MAX_RESPONSE_BYTES,
                        "max_event_bytes": MAX_EVENT_BYTES});
    (fixtures, json!({"providers": providers, "models": models, "limits": limits}))
}

fn prompt_section() -> Value {
    let classify_schema = json!({
        "type": "object", "additionalProperties": false, "required": ["label", "confidence"],
        "properties": {"label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                       "confidence": {"type": "number", "minimum": 0, "maximum": 1}}
    });
    let extract_schema = json!({
        "type": "object", "required": ["items"],
        "properties": {"items": {"type": "array", "maxItems": 5, "items": {"type": "object",
            "properties": {"name": {"type": "string", "maxLength": 40}, "count": {"type": "integer"}}}},
            "note": {"type": "string"}}
    });
    json!({
        "endpoints": [
            {"path": "/summarize/v2", "model": "claude-sonnet", "temperature": 0.2, "max_tokens": 300,
             "variables": {
                "text": {"type": "string", "required": true, "min_length": 1, "max_length": 20000},
                "style": {"type": "enum", "values": ["brief", "detailed"], "default": "brief"},
                "max_words": {"type": "integer", "minimum": 10, "maximum": 500, "default": 100}},
             "versions": [
                {"name": "v1", "weight": 3, "messages": [
                    {"role": "system", "content": "You summarize documents."},
                    {"role": "user", "content": "In {{style}} style, at most {{max_words}} words:\n{{text}}"}]},
                {"name": "v2", "weight": 1, "messages": [
                    {"role": "user", "content": "Document:\n{{text}}\nAt most {{max_words}} words."}]}]},
            {"path": "/classify", "model": "gpt-4o", "temperature": 0, "max_tokens": 150,
             "variables": {
                "text": {"type": "string", "required": true, "max_length": 500},
                "tags": {"type": "array", "items": "string", "max_length": 3},
                "strict": {"type": "boolean", "default": false}},
             "versions": [{"name": "v1", "messages": [
                {"role": "system", "content": "Classify the sentiment. Answer in JSON."},
                {"role": "user", "content": "(strict: {{strict}}, tags: {{tags}})\n{{text}}"}]}],
             "output": {"mode": "json", "schema": classify_schema}},
            {"path": "/extract", "method": "PUT", "model": "gemini-flash", "timeout_ms": 5000,
             "variables": {
                "text": {"type": "string", "required": true},
                "limit": {"type": "integer", "minimum": 1, "maximum": 5},
                "ratio": {"type": "number", "minimum": -1.5, "maximum": 1e6},
                "flags": {"type": "array", "items": "boolean", "min_length": 0, "max_length": 4}},
             "versions": [{"name": "only", "messages": [
                {"role": "user", "content": "Extract up to {{limit}} items ({{ratio}}, {{flags}}):\n{{text}}"}]}],
             "output": {"mode": "json", "schema": extract_schema}}
        ],
        "openapi": {"title": "never-trap", "version": "1.0.0"},
        "decorators": [{"path_prefix": "/v1/chat", "prepend": [{"role": "system", "content": "House rules."}],
                        "append": [{"role": "user", "content": "Answer in English."}]}]
    })
}

fn world() -> World {
    let (fixtures, ai) = fixtures();
    let (alice, bob) = (idp::api_key(1), idp::api_key(2));
    let (k1, k2, other) = (idp::es256(7), idp::es256(8), idp::es256(9));
    let mut bob_entry = bob.config_entry();
    bob_entry["routes"] = json!(["/v1/", "/classify"]);
    bob_entry["models"] = json!(["gpt-4o*"]);
    let config = json!({
        "upstream_headers": {"set": {"x-tollgate": "on"}, "remove": ["x-internal"]},
        "response_headers": {"set": {"x-served-by": "tollgate"}, "remove": ["server"]},
        "local_replies": [{"path_prefix": "/tollgate/ping", "method": "GET", "status": 200, "body": {"pong": true}}],
        "auth": {
            "consumers": [
                {"name": "alice", "group": "gold", "api_keys": [alice.config_entry()]},
                {"name": "bob", "group": "silver", "api_keys": [bob_entry]},
                {"name": "carol", "group": "silver"}
            ],
            "jwt_providers": [{
                "name": "corp", "issuer": idp::ISSUER, "audiences": [idp::AUDIENCE], "algorithms": ["ES256"],
                "keys": {"jwks": idp::jwks(&[k1.jwk("k1"), k2.jwk("k2")])},
                "claims_to_headers": {"email": "x-user-email"}
            }],
            "routes": [
                {"path_prefix": "/health", "require": "none"},
                {"path_prefix": "/.well-known/tollgate/", "require": "none"},
                {"path_prefix": "/admin/", "groups": ["gold"]},
                {"path_prefix": "/jwt-only/", "require": "jwt"}
            ]
        },
        "ratelimit": {
            "headers": true, "currency": "USD", "default_max_tokens": 1024,
            "rules": [
                {"name": "per-consumer", "key": ["consumer"], "requests": 120, "per": "minute"},
                {"name": "per-ip", "key": ["client_ip"], "requests": 20, "per": "second", "shadow": true},
                {"name": "team", "key": [{"header": "x-team"}], "requests": 2, "per": "minute"},
                {"name": "tokens", "key": ["consumer", "model"], "tokens": 400_000, "per": "hour"},
                {"name": "spend", "key": ["consumer"], "budget": 20.0, "per": "day"},
                {"name": "classify-tokens", "routes": ["/classify"], "key": ["route"], "tokens": 50_000, "per": "day"}
            ],
            "prices": {"models": {
                "gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075},
                "claude-sonnet": {"input": 3.0, "output": 15.0},
                "*": {"input": 2.5, "output": 10.0}
            }}
        },
        "ai": ai,
        "prompt": prompt_section(),
        "trace": {"enabled": true, "header_for_consumers": ["alice"], "header_for_groups": ["silver"]}
    });
    let now = 1_704_067_200; // the host's virtual clock starts at 2024-01-01T00:00:00Z
    let tokens = vec![
        k1.sign(Some("k1"), &idp::claims("carol", now)),
        k2.sign(Some("k2"), &idp::claims("alice", now)),
        k1.sign(Some("k1"), &idp::claims("mallory", now)),
    ];
    World {
        config: config.to_string(),
        streams: (0..fixtures.len()).filter(|&i| fixtures[i].sse.is_some()).collect(),
        fixtures,
        alice: alice.key,
        bob: bob.key,
        tokens,
        hostile_tokens: hostile_tokens(&k1, &other, now),
    }
}

fn hostile_tokens(k1: &idp::SigningKey, other: &idp::SigningKey, now: u64) -> Vec<String> {
    let good = idp::claims("carol", now);
    let es = json!({"alg": "ES256", "kid": "k1"});
    let b64 = |v: &Value| idp::b64(v.to_string().as_bytes());
    let claims_with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    vec![
        k1.sign(Some("k1"), &idp::claims("carol", now - 100_000)),
        k1.sign(Some("k1"), &claims_with("exp", json!(1e300))),
        k1.sign(Some("k1"), &claims_with("exp", json!("never"))),
        k1.sign(Some("k1"), &claims_with("exp", json!(u64::MAX))),
        k1.sign(Some("k1"), &claims_with("nbf", json!(now + 100_000))),
        k1.sign(Some("k1"), &claims_with("aud", json!(["other", {"x": 1}]))),
        k1.sign(Some("k1"), &claims_with("iss", json!(null))),
        k1.sign(Some("k1"), &claims_with("sub", json!({"a": [1, 2]}))),
        k1.sign(Some("k1"), &claims_with("sub", json!("a\r\nx-evil: 1"))),
        k1.sign(Some("k1"), &claims_with("email", json!("x".repeat(5000)))),
        k1.sign(Some("unknown"), &good),
        k1.sign(None, &good),
        other.sign(Some("k1"), &good),
        idp::forge(&es, &good),
        idp::forge(&json!({"alg": "none"}), &good),
        idp::forge(&json!({"alg": "HS256", "kid": "k1"}), &good),
        idp::forge(&json!({"alg": ["ES256"]}), &good),
        idp::forge(&es, &json!([1, 2, 3])),
        idp::forge(&json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}), &good),
        format!("{}.{}.", b64(&es), b64(&good)),
        format!("{}.{}.c2ln", b64(&es), idp::b64("[".repeat(3000).as_bytes())),
        format!("{}.{}.c2ln", b64(&es), idp::b64(b"{\"exp\":1e999,\"sub\":\"a\",\"sub\":\"b\"}")),
        format!("{}.{}.c2ln", idp::b64(&[0xff, 0xfe, 0x80]), b64(&good)),
        "eyJ!!!.e30.c2ln".into(),
        "a.b.c".into(),
        "..".into(),
        "e30.e30.e30.e30".into(),
        "A".repeat(70_000),
        ".".repeat(9_000),
    ]
}

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

/// One generated input: the client's request, the upstream's answer, answers to the filter's own calls.
struct Case {
    category: Category,
    request: Request,
    response: Response,
    calls: Vec<Reply>,
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
                well_formed(&ex)
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
fn well_formed(ex: &Exchange) -> Result<(), String> {
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

fn generate(rng: &mut StdRng, world: &World) -> Case {
    match rng.gen_range(0..100) {
        0..=57 => head_case(rng, world),
        58..=77 => body_case(rng, world),
        78..=85 => upstream_case(rng, world),
        86..=94 => sse_case(rng, world),
        _ => prompt_case(rng, world),
    }
}

/// Mostly good credentials, so most requests get past authentication; the rest missing, garbage or hostile.
fn credentials(rng: &mut StdRng, world: &World, good: f64) -> Vec<(String, String)> {
    let key_in = |rng: &mut StdRng, key: &str| match rng.gen_range(0..3) {
        0 => ("x-api-key".to_string(), key.to_string()),
        1 => ("api-key".to_string(), key.to_string()),
        _ => ("authorization".to_string(), format!("Bearer {key}")),
    };
    let bearer = |token: &str| ("authorization".to_string(), format!("Bearer {token}"));
    let mut out = if rng.gen_bool(good) {
        match rng.gen_range(0..10) {
            0..=5 => vec![key_in(rng, &world.alice)],
            6 | 7 => vec![key_in(rng, &world.bob)],
            _ => vec![bearer(world.tokens.choose(rng).unwrap())],
        }
    } else {
        let alice = &world.alice;
        match rng.gen_range(0..4) {
            0 => Vec::new(),
            1 => vec![bearer(world.hostile_tokens.choose(rng).unwrap())],
            2 => {
                let garbage = [
                    "Bearer".to_string(),
                    "Bearer ".to_string(),
                    "Basic dXNlcjpwYXNz".to_string(),
                    format!("bearer {alice}"),
                    format!("Bearer {alice} {alice}"),
                    format!("Bearer  {alice}"),
                    alice.clone(),
                    format!("Bearer {alice}x"),
                    format!("Bearer {}", &alice[..alice.len() - 1]),
                    "Bearer \u{fffd}\u{0001}".to_string(),
                    format!("Bearer {}", "k".repeat(20_000)),
                ];
                vec![("authorization".to_string(), garbage.choose(rng).unwrap().clone())]
            }
            _ => {
                let value = inputs::value(rng);
                vec![key_in(rng, &value)]
            }
        }
    };
    if rng.gen_bool(0.05) {
        // A second credential, in the same field or another.
        out.push(key_in(rng, "sk-not-a-key"));
    }
    out
}

/// A request with credentials, the given content type (or a random one), and a few other header fields.
fn request(rng: &mut StdRng, world: &World, method: &str, path: &str, json_body: bool, good: f64) -> Request {
    let mut headers = credentials(rng, world, good);
    let extra = inputs::headers(rng);
    if json_body && rng.gen_bool(0.95) {
        headers.push(("content-type".into(), "application/json".into()));
        headers.extend(extra.into_iter().filter(|(k, _)| k != "content-type"));
    } else {
        headers.extend(extra);
    }
    if rng.gen_bool(0.5) {
        headers.shuffle(rng);
    }
    let mut request = Request::new(method, path);
    request.headers = headers;
    if rng.gen_bool(0.1) {
        let address =
            ["10.0.0.7:1234", "[2001:db8::1]:443", "not-an-address", "", "::ffff:10.1.2.3", "1.2.3.4"];
        request = request.property("source.address", address.choose(rng).unwrap());
    }
    request
}

fn head_case(rng: &mut StdRng, world: &World) -> Case {
    let (method, path) = (inputs::method(rng), inputs::path(rng));
    let request = request(rng, world, &method, &path, false, 0.75);
    let response = match rng.gen_range(0..6) {
        0 => Response::status(*[204, 301, 404, 500, 503].choose(rng).unwrap()),
        1 => Response::status(200).header("content-type", "application/json").body(r#"{"ok":true}"#),
        2 => Response::status(200)
            .header("server", "upstream")
            .header("content-type", "text/html")
            .body("<p>hi</p>"),
        _ => Response::status(200),
    };
    Case { category: Category::Head, request, response, calls: Vec::new() }
}

/// Values that fit no field: numbers at and past the integer limits, wrong types, long strings.
fn odd_value(rng: &mut StdRng) -> Value {
    let values = [
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.797_693_134_862_315_7e308),
        json!(-0.0),
        json!(1e-300),
        json!(4_294_967_296u64),
        json!("1"),
        json!(null),
        json!([]),
        json!({}),
        json!(true),
        json!("x".repeat(3000)),
        json!([{"role": "user"}]),
        json!([{"role": "tool", "content": [{"type": "image_url", "image_url": {"url": "data:;base64,@@"}}]}]),
        json!({"type": "json_schema", "json_schema": {"schema": {"$ref": "#"}}}),
        json!({"include_usage": "yes"}),
    ];
    values.choose(rng).unwrap().clone()
}

/// A fixture's request body, damaged one of many ways (or not at all).
fn request_body(rng: &mut StdRng, seed: &Value) -> Vec<u8> {
    let mut value = seed.clone();
    if rng.gen_bool(0.25) {
        if let Some(map) = value.as_object_mut() {
            let fields = [
                "model",
                "messages",
                "max_tokens",
                "max_completion_tokens",
                "n",
                "temperature",
                "stream",
                "stream_options",
                "tools",
                "tool_choice",
                "response_format",
                "input",
                "dimensions",
                "stop",
                "seed",
            ];
            map.insert(fields.choose(rng).unwrap().to_string(), odd_value(rng));
        }
    }
    let big = |size: usize| {
        let mut v = seed.clone();
        if let Some(map) = v.as_object_mut() {
            map.insert("messages".into(), json!([{"role": "user", "content": "x".repeat(size)}]));
            map.insert("input".into(), json!("y".repeat(size)));
        }
        serde_json::to_vec(&v).unwrap()
    };
    match rng.gen_range(0..40) {
        0 => Vec::new(),
        1 => [
            &b"null"[..],
            b"[]",
            b"{}",
            b"\xef\xbb\xbf{}",
            b"   \n",
            b"\"model\"",
            b"{\"model\":\"gpt-4o\"}",
            b"1e999",
        ]
        .choose(rng)
        .unwrap()
        .to_vec(),
        2 => {
            let depth = *[200usize, 5_000, 100_000].choose(rng).unwrap();
            let mut body = b"{\"model\":\"gpt-4o\",\"messages\":".to_vec();
            body.extend(std::iter::repeat_n(b'[', depth));
            body.extend(std::iter::repeat_n(b']', depth));
            body.push(b'}');
            body
        }
        3 => big(MAX_REQUEST_BYTES / 2 - 1000),
        4 => big(MAX_REQUEST_BYTES + 10),
        5 => {
            let mut v = seed.clone();
            if let Some(map) = v.as_object_mut() {
                let message = json!({"role": "user", "content": "hi"});
                map.insert("messages".into(), Value::Array(vec![message; 4000]));
            }
            serde_json::to_vec(&v).unwrap()
        }
        _ => {
            let rate = *[0.0, 0.01, 0.03, 0.08, 0.2].choose(rng).unwrap();
            let mut body = inputs::json(rng, &value, rate);
            if rng.gen_bool(0.3) {
                inputs::bytes(rng, &mut body);
            }
            body
        }
    }
}

/// The fixture's own upstream answer.
fn fixture_response(fixture: &Fixture) -> Response {
    let mut response = Response::status(fixture.status);
    response.headers = fixture.headers.clone();
    let body = match (&fixture.sse, &fixture.body) {
        (Some(sse), _) => sse.as_bytes().to_vec(),
        (None, Some(Value::String(raw))) => raw.as_bytes().to_vec(),
        (None, Some(body)) => serde_json::to_vec(body).unwrap(),
        (None, None) => Vec::new(),
    };
    response.body(body)
}

fn body_case(rng: &mut StdRng, world: &World) -> Case {
    let fixture = world.fixtures.choose(rng).unwrap();
    let path = if rng.gen_bool(0.9) {
        fixture.path.clone()
    } else {
        ["/v1/chat/completions", "/v1/embeddings", "/v1/models", "/summarize/v2"]
            .choose(rng)
            .unwrap()
            .to_string()
    };
    let method = if rng.gen_bool(0.95) { "POST".to_string() } else { inputs::method(rng) };
    let body = request_body(rng, &fixture.request);
    let request = request(rng, world, &method, &path, true, 0.9).body_chunks(inputs::chunks(rng, &body));
    Case { category: Category::Body, request, response: fixture_response(fixture), calls: Vec::new() }
}

/// A request exactly as the fixture has it, from a client with a good key.
fn fixture_request(rng: &mut StdRng, world: &World, fixture: &Fixture) -> Request {
    let body = serde_json::to_vec(&fixture.request).unwrap();
    request(rng, world, "POST", &fixture.path, true, 0.97).body_chunks(inputs::chunks(rng, &body))
}

const STATUSES: &[u16] =
    &[200, 201, 204, 299, 304, 400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504, 529, 599];

fn upstream_case(rng: &mut StdRng, world: &World) -> Case {
    let plain: Vec<&Fixture> = world.fixtures.iter().filter(|f| f.sse.is_none()).collect();
    let fixture = *plain.choose(rng).unwrap();
    let request = fixture_request(rng, world, fixture);
    let status = if rng.gen_bool(0.7) { fixture.status } else { *STATUSES.choose(rng).unwrap() };
    let mut response = Response::status(status);
    response.headers = fixture.headers.clone();
    if rng.gen_bool(0.15) {
        let ct = [
            "text/html",
            "application/json; charset=utf-8",
            "text/event-stream",
            "",
            "application/problem+json",
        ];
        response.headers.retain(|(k, _)| k != "content-type");
        response.headers.push(("content-type".into(), ct.choose(rng).unwrap().to_string()));
    }
    let seed = fixture_response(fixture).body.concat();
    let body = match rng.gen_range(0..12) {
        0 => Vec::new(),
        1 => b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
        2 => format!("{{\"id\":\"x\",\"content\":\"{}\"}}", "z".repeat(MAX_RESPONSE_BYTES)).into_bytes(),
        3 => fixture_response(world.fixtures.choose(rng).unwrap()).body.concat(),
        4 => world.fixtures[*world.streams.choose(rng).unwrap()].sse.clone().unwrap().into_bytes(),
        _ => match serde_json::from_slice::<Value>(&seed) {
            Ok(value) => {
                let rate = *[0.0, 0.02, 0.08, 0.2].choose(rng).unwrap();
                let mut body = inputs::json(rng, &value, rate);
                if rng.gen_bool(0.3) {
                    inputs::bytes(rng, &mut body);
                }
                body
            }
            Err(_) => {
                let mut body = seed;
                inputs::bytes(rng, &mut body);
                body
            }
        },
    };
    let response = response.body_chunks(inputs::chunks(rng, &body));
    Case { category: Category::Upstream, request, response, calls: Vec::new() }
}

fn sse_case(rng: &mut StdRng, world: &World) -> Case {
    let fixture = &world.fixtures[*world.streams.choose(rng).unwrap()];
    let mut seed = fixture.request.clone();
    if rng.gen_bool(0.3) {
        seed["stream_options"] = json!({"include_usage": rng.gen_bool(0.5)});
    }
    let body = serde_json::to_vec(&seed).unwrap();
    let request =
        request(rng, world, "POST", &fixture.path, true, 0.97).body_chunks(inputs::chunks(rng, &body));
    let stream = if rng.gen_bool(0.9) {
        fixture.sse.clone().unwrap()
    } else {
        world.fixtures[*world.streams.choose(rng).unwrap()].sse.clone().unwrap()
    };
    let status = if rng.gen_bool(0.9) { 200 } else { *STATUSES.choose(rng).unwrap() };
    let ct = if rng.gen_bool(0.85) {
        "text/event-stream"
    } else {
        *["text/event-stream; charset=utf-8", "application/json", "", "text/plain"].choose(rng).unwrap()
    };
    let data = inputs::sse(rng, &stream, MAX_EVENT_BYTES);
    let response =
        Response::status(status).header("content-type", ct).body_chunks(inputs::chunks(rng, &data));
    Case { category: Category::Sse, request, response, calls: Vec::new() }
}

/// Variables for each endpoint, right or wrong, and which provider format the endpoint's model speaks.
fn prompt_case(rng: &mut StdRng, world: &World) -> Case {
    let text = if rng.gen_bool(0.9) {
        "The service was great.".to_string()
    } else {
        "t".repeat(rng.gen_range(0..30_000))
    };
    let (path, method, provider, json_output, variables) = match rng.gen_range(0..3) {
        0 => (
            "/summarize/v2",
            "POST",
            "anthropic",
            false,
            json!({"text": text, "style": "brief", "max_words": rng.gen_range(0..700)}),
        ),
        1 => (
            "/classify",
            "POST",
            "openai",
            true,
            json!({"text": text, "tags": ["a", "b"], "strict": rng.gen_bool(0.5)}),
        ),
        _ => (
            "/extract",
            "PUT",
            "gemini",
            true,
            json!({"text": text, "limit": rng.gen_range(0..7), "ratio": 0.5, "flags": [true, false]}),
        ),
    };
    let method = if rng.gen_bool(0.9) { method.to_string() } else { inputs::method(rng) };
    let body = request_body(rng, &variables);
    let mut request = request(rng, world, &method, path, true, 0.9).body_chunks(inputs::chunks(rng, &body));
    if rng.gen_bool(0.5) {
        request = request.header("x-request-id", &format!("{:x}", rng.gen::<u32>()));
    }
    let calls = (0..rng.gen_range(1..=2)).map(|_| provider_answer(rng, provider, json_output)).collect();
    Case { category: Category::Prompt, request, response: Response::status(200), calls }
}

/// What the prompt endpoint's provider answers its call with: a good answer in the provider's format, one
/// whose text does not fit the output schema, a damaged one, an error, or none before the timeout.
fn provider_answer(rng: &mut StdRng, provider: &str, json_output: bool) -> Reply {
    let text = if json_output {
        let texts = [
            r#"{"label": "positive", "confidence": 0.9}"#,
            "```json\n{\"label\": \"neutral\", \"confidence\": 0}\n```",
            r#"{"items": [{"name": "a", "count": 1}], "note": "ok"}"#,
            r#"{"items": [{"name": "a", "count": 1e999}]}"#,
            r#"{"label": "ecstatic", "confidence": 2, "label": "positive"}"#,
            "Sure! Here is the JSON you wanted.",
            "",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ];
        texts.choose(rng).unwrap().to_string()
    } else {
        ["A short summary.", "", "\u{fffd}"].choose(rng).unwrap().to_string()
    };
    let answer = match provider {
        "openai" => openai_body(&text),
        "anthropic" => {
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 5}})
        }
        _ => {
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}})
        }
    };
    let json_response = |status: u16, body: Vec<u8>| {
        Reply::Http(Response::status(status).header("content-type", "application/json").body(body))
    };
    match rng.gen_range(0..20) {
        0 => Reply::Never,
        1 | 2 => json_response(
            *STATUSES.choose(rng).unwrap(),
            br#"{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}"#.to_vec(),
        ),
        3 => Reply::Http(Response::status(502).body("<html>bad gateway</html>")),
        4 => json_response(200, Vec::new()),
        5..=8 => {
            let mut body = inputs::json(rng, &answer, 0.1);
            if rng.gen_bool(0.3) {
                inputs::bytes(rng, &mut body);
            }
            json_response(200, body)
        }
        _ => json_response(200, serde_json::to_vec(&answer).unwrap()),
    }
}

fn openai_body(text: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
}

fn openai_answer(text: &str) -> Response {
    Response::status(200).header("content-type", "application/json").body(openai_body(text).to_string())
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
        if let Err(problem) = well_formed(&ex) {
            problems.push(format!("upstream {status} {content_type} with no body: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Found by the property test: Tollgate has no trailers callbacks, so an AI request whose body is followed by
/// trailers (HTTP/2, gRPC-style clients) never sees its body end, and neither does a provider answer with
/// trailers. In this host the held stream stalls (it delivers trailers only once the held headers go on);
/// what Envoy does with them while the head is held is worth checking there.
#[test]
#[ignore = "open bug (issue 11): no trailers callbacks, a held AI stream never ends; run with --ignored"]
fn an_ai_request_or_answer_with_trailers_still_gets_an_answer() {
    let world = world();
    let host = Host::load(tollgate_harness::tollgate_wasm()).unwrap();
    let mut vm = host.plugin(&world.config).start().unwrap();
    let key = format!("Bearer {}", world.alice);
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let request = || Request::post("/v1/chat/completions").header("authorization", &key).body(&chat);
    let mut problems = Vec::new();
    for (what, request, response) in [
        ("request trailers", request().trailers([("x-checksum", "1")]), openai_answer("hello")),
        ("response trailers", request(), openai_answer("hello").trailers([("x-checksum", "1")])),
    ] {
        match vm.send(request).respond_with(response).run() {
            Ok(ex) => {
                if let Err(problem) = well_formed(&ex) {
                    problems.push(format!("{what}: {problem}"));
                }
            }
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

//! `./build.sh bench`: the cost of AI normalization in `dist/tollgate.wasm` in the wasmtime host. A 5 KB
//! OpenAI chat request translated for Anthropic (and the Anthropic answer translated back), and a 50-event
//! Anthropic SSE stream turned into OpenAI chunks, each next to the same bytes passed through untouched by a
//! filter with an empty config, measured in the same run. The upstream answers come from the harness's
//! Anthropic mock, so they are the provider's real wire format.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use tollgate_harness::host::{Host, Request, Response, Vm};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::{ReceivedRequest, Reply};

const BATCHES: usize = 7;
const KEY: &str = "bench-provider-key";
const EVENTS: usize = 50;

struct Case {
    name: &'static str,
    config: String,
    request: Request,
    response: Response,
    batch: usize,
    /// Body chunks per response, to report the cost per chunk of streamed cases.
    chunks: Option<usize>,
}

fn ai_config() -> String {
    json!({"ai": {
        "providers": [{"name": "claude", "kind": "anthropic", "cluster": "anthropic", "api_key": KEY,
                       "api_version": "2023-06-01", "default_max_tokens": 1024}],
        "models": [{"name": "claude-*", "provider": "claude"}]
    }})
    .to_string()
}

/// An OpenAI chat request of about 5 KB: a system prompt, a few turns, a tool, and `words` in the last turn.
fn chat_request(stream: bool, last_words: usize) -> Value {
    let filler = "The quick brown fox jumps over the lazy dog while the proxy translates every field. ";
    let mut messages = vec![json!({"role": "system", "content": filler.repeat(8)})];
    for turn in 0..8 {
        messages.push(json!({"role": "user", "content": format!("Question {turn}: {}", filler.repeat(3))}));
        messages
            .push(json!({"role": "assistant", "content": format!("Answer {turn}: {}", filler.repeat(2))}));
    }
    let last: Vec<String> = (0..last_words).map(|i| format!("w{i}")).collect();
    messages.push(json!({"role": "user", "content": last.join(" ")}));
    json!({"model": "claude-sonnet-4-5", "messages": messages, "stream": stream, "temperature": 0.2,
           "max_tokens": 512, "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null }})
}

/// What the Anthropic mock answers to the translated form of `body` (built by hand here, as the mock only
/// needs the last user text).
fn anthropic_reply(body: &Value) -> Reply {
    let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
    let last = body.get("messages").and_then(Value::as_array).and_then(|m| m.last());
    let content = last.and_then(|m| m.get("content")).cloned().unwrap_or(Value::Null);
    let request = json!({"model": field("model"), "max_tokens": 512, "stream": field("stream"),
                         "messages": [{"role": "user", "content": content}]});
    let received = ReceivedRequest {
        method: "POST".into(),
        path: "/v1/messages".into(),
        headers: vec![("x-api-key".into(), KEY.into()), ("anthropic-version".into(), "2023-06-01".into())],
        body: request.to_string().into_bytes(),
    };
    MockLlm::new(ProviderKind::Anthropic, KEY).answer(&received)
}

fn response(reply: Reply) -> (Response, usize) {
    match reply {
        Reply::Fixed { status, headers, body } => {
            let response = headers.iter().fold(Response::status(status), |r, (k, v)| r.header(k, v));
            (response.body(body), 1)
        }
        Reply::Stream { status, headers, chunks } => {
            let count = chunks.len();
            let response = headers.iter().fold(Response::status(status), |r, (k, v)| r.header(k, v));
            (response.body_chunks(chunks.into_iter().map(|c| c.data)), count)
        }
        Reply::Echo => (Response::status(200), 1),
    }
}

fn cases() -> anyhow::Result<Vec<Case>> {
    let post = |body: &Value| {
        Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("authorization", "Bearer client-key")
            .body(body.to_string())
    };
    let chat = chat_request(false, 3);
    let (chat_response, _) = response(anthropic_reply(&chat));
    // "echo:" and 43 words: one text delta each, plus six framing events, make fifty.
    let stream = chat_request(true, EVENTS - 7);
    let (stream_response, events) = response(anthropic_reply(&stream));
    anyhow::ensure!(events == EVENTS, "the mock stream has {events} events, not {EVENTS}");
    let size = post(&chat).body.concat().len();
    anyhow::ensure!((4_500..6_000).contains(&size), "the chat request is {size} bytes, not about 5 KB");
    Ok(vec![
        Case {
            name: "pass-through, 5 KB chat",
            config: "{}".into(),
            request: post(&chat),
            response: chat_response.clone(),
            batch: 1_000,
            chunks: None,
        },
        Case {
            name: "OpenAI -> Anthropic, 5 KB chat",
            config: ai_config(),
            request: post(&chat),
            response: chat_response,
            batch: 1_000,
            chunks: None,
        },
        Case {
            name: "pass-through, 50-event SSE",
            config: "{}".into(),
            request: post(&stream),
            response: stream_response.clone(),
            batch: 200,
            chunks: Some(events),
        },
        Case {
            name: "Anthropic SSE -> OpenAI chunks",
            config: ai_config(),
            request: post(&stream),
            response: stream_response,
            batch: 200,
            chunks: Some(events),
        },
    ])
}

/// Median microseconds per request over several batches (the median resists a noisy shared machine).
fn measure(vm: &mut Vm, case: &Case) -> anyhow::Result<f64> {
    for _ in 0..case.batch / 4 {
        vm.send(case.request.clone()).respond_with(case.response.clone()).run()?;
    }
    let mut per_request = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..case.batch {
            black_box(vm.send(case.request.clone()).respond_with(case.response.clone()).run()?);
        }
        per_request.push(start.elapsed().as_secs_f64() * 1e6 / case.batch as f64);
    }
    per_request.sort_by(f64::total_cmp);
    Ok(per_request.get(BATCHES / 2).copied().unwrap_or(f64::NAN))
}

fn main() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::tollgate_wasm())?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for case in cases()? {
        let mut vm = host.plugin(&case.config).start()?;
        // A refused or untranslated request would measure the wrong thing.
        let first = vm.send(case.request.clone()).respond_with(case.response.clone()).run()?;
        anyhow::ensure!(
            first.downstream.status == 200,
            "{}: the first request got {}: {}",
            case.name,
            first.downstream.status,
            first.downstream.body_str()
        );
        if case.config != "{}" {
            let path = first.upstream.as_ref().map(|u| u.path.as_str());
            anyhow::ensure!(path == Some("/v1/messages"), "{}: the upstream got {path:?}", case.name);
        }
        rows.push((case.name, measure(&mut vm, &case)?, case.chunks));
    }
    println!("\nAI normalization in the wasmtime host: median of {BATCHES} batches\n");
    println!("{:<34} {:>12} {:>12}", "case", "µs/request", "µs/chunk");
    for (name, us, chunks) in &rows {
        let per_chunk = chunks.map_or_else(|| "-".to_owned(), |n| format!("{:.2}", us / n as f64));
        println!("{name:<34} {us:>12.1} {per_chunk:>12}");
    }
    println!(
        "\n(measured in {:.1?}; compare each translated row with the pass-through row above it)",
        started.elapsed()
    );
    Ok(())
}

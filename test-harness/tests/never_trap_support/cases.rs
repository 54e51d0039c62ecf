//! The never-trap test's inputs: one generated case per call, shaped for one part of the filter (heads,
//! request bodies, provider answers, SSE streams, prompt endpoints), built from the world's fixtures and
//! damaged by the mutators in `inputs`.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tollgate_harness::host::{Reply, Request, Response};

use crate::inputs;
use crate::world::{Category, Fixture, World, MAX_EVENT_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// One generated input: the client's request, the upstream's answer, answers to the filter's own calls.
pub struct Case {
    pub category: Category,
    pub request: Request,
    pub response: Response,
    pub calls: Vec<Reply>,
}

pub fn generate(rng: &mut StdRng, world: &World) -> Case {
    match rng.gen_range(0..100) {
        0..=57 => head_case(rng, world),
        58..=77 => body_case(rng, world),
        78..=85 => upstream_case(rng, world),
        86..=94 => sse_case(rng, world),
        _ => prompt_case(rng, world),
    }
}

/// Mostly good credentials, so most requests get past authentication; the rest missing, garbage or hostile.
pub fn credentials(rng: &mut StdRng, world: &World, good: f64) -> Vec<(String, String)> {
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
pub fn request(
    rng: &mut StdRng,
    world: &World,
    method: &str,
    path: &str,
    json_body: bool,
    good: f64,
) -> Request {
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

pub fn head_case(rng: &mut StdRng, world: &World) -> Case {
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
pub fn odd_value(rng: &mut StdRng) -> Value {
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
pub fn request_body(rng: &mut StdRng, seed: &Value) -> Vec<u8> {
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
pub fn fixture_response(fixture: &Fixture) -> Response {
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

pub fn body_case(rng: &mut StdRng, world: &World) -> Case {
    let fixture = world.fixtures.choose(rng).unwrap();
    let path = if rng.gen_bool(0.9) {
        fixture.path.clone()
    } else {
        ["/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/models", "/summarize/v2"]
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
pub fn fixture_request(rng: &mut StdRng, world: &World, fixture: &Fixture) -> Request {
    let body = serde_json::to_vec(&fixture.request).unwrap();
    request(rng, world, "POST", &fixture.path, true, 0.97).body_chunks(inputs::chunks(rng, &body))
}

pub const STATUSES: &[u16] =
    &[200, 201, 204, 299, 304, 400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504, 529, 599];

pub fn upstream_case(rng: &mut StdRng, world: &World) -> Case {
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

pub fn sse_case(rng: &mut StdRng, world: &World) -> Case {
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
pub fn prompt_case(rng: &mut StdRng, world: &World) -> Case {
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
pub fn provider_answer(rng: &mut StdRng, provider: &str, json_output: bool) -> Reply {
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

pub fn openai_body(text: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
}

pub fn openai_answer(text: &str) -> Response {
    Response::status(200).header("content-type", "application/json").body(openai_body(text).to_string())
}

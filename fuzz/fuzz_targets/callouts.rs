//! What comes back from the calls the filter makes itself, through the whole pipeline: the rate limit
//! service's answer to `ShouldRateLimit` (gRPC, protobuf bytes) and a provider's answer to a prompt
//! endpoint's chat request (HTTP, JSON or anything). Whatever the status and bytes, the pipeline must decide
//! without panicking, and a refusal it sends must be a JSON error.
//!
//! Input: byte 0 picks the call (even: the rate limit service, asked at a request's head and, for an AI
//! request, again once its body is in; odd: the prompt endpoint's provider, answering up to three attempts);
//! byte 1 picks the status (0 means the call failed outright); the rest is the answer's body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{BodyVerdict, CallOutcome, Callout, LocalReply, RequestHead, Verdict};
use tollgate_pipeline::Pipeline;

const STATUSES: [u16; 8] = [200, 204, 400, 429, 500, 503, 299, 302];

fn pipeline() -> Pipeline {
    let config = json!({
        "ratelimit": {
            "rules": [
                {"name": "fleet", "mode": "global", "key": ["route"], "routes": ["/v1/"]},
                {"name": "fleet-tokens", "mode": "global", "counts": "tokens", "key": ["model"],
                 "routes": ["/v1/chat"], "failure_mode": "open"}
            ],
            "service": {"cluster": "rls", "domain": "edge"}
        },
        "ai": {
            "providers": [{"name": "oai", "kind": "openai", "cluster": "openai", "api_key": "sk-secret"}],
            "models": [{"name": "gpt-4o", "provider": "oai"}]
        },
        "prompt": {"endpoints": [
            {"path": "/api/sentiment", "model": "gpt-4o", "max_tokens": 20,
             "variables": {"text": {"type": "string", "required": true}},
             "output": {"mode": "json", "schema": {"type": "object", "required": ["label"],
                        "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}}}},
             "versions": [{"name": "v1", "messages": [{"role": "user", "content": "Sentiment of: {{text}}"}]}]}
        ]}
    });
    Pipeline::from_json(config.to_string().as_bytes()).expect("the fuzz config compiles")
}

fn check(reply: &LocalReply) {
    if reply.reason().is_some() {
        let body: Value = serde_json::from_slice(&reply.body).expect("a refusal's body is JSON");
        assert!(body.get("error").is_some(), "a refusal carries an error: {body}");
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, status, body @ ..] = data else { return };
    let outcome = match status {
        0 => CallOutcome::Failed { reason: "reset".into() },
        s => CallOutcome::Response {
            status: STATUSES[usize::from(*s) % STATUSES.len()],
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
        },
    };
    let pipeline = pipeline();
    let host = MemoryHost::default();
    let ports = host.ports();
    let mut stream = pipeline.stream();
    if which % 2 == 0 {
        let head = RequestHead::from_pairs([(":method", "POST"), (":path", "/v1/chat/completions")]);
        let mut verdict = pipeline.on_request_headers(&mut stream, &head, ports);
        for _ in 0..3 {
            match verdict {
                Verdict::Call(Callout::Grpc(_)) => verdict = pipeline.on_call_response(&mut stream, &outcome, ports),
                Verdict::Respond(reply) => return check(&reply),
                _ => break,
            }
        }
        let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
        let mut verdict = pipeline.on_request_body(&mut stream, chat.as_bytes(), true, ports);
        for _ in 0..3 {
            match verdict {
                BodyVerdict::Call(_) => verdict = pipeline.on_body_call_response(&mut stream, &outcome, ports),
                BodyVerdict::Respond(reply) => return check(&reply),
                _ => break,
            }
        }
    } else {
        let head = RequestHead::from_pairs([(":method", "POST"), (":path", "/api/sentiment")]);
        let head_verdict = pipeline.on_request_headers(&mut stream, &head, ports);
        // The prompt's head asks the rate limit service first; let it admit.
        let admitted = CallOutcome::Failed { reason: "no service".into() };
        if let Verdict::Call(Callout::Grpc(_)) = head_verdict {
            if let Verdict::Respond(reply) = pipeline.on_call_response(&mut stream, &admitted, ports) {
                return check(&reply);
            }
        }
        let mut verdict = pipeline.on_request_body(&mut stream, br#"{"text": "great"}"#, true, ports);
        for _ in 0..4 {
            match verdict {
                BodyVerdict::Call(Callout::Http(_)) => {
                    verdict = pipeline.on_body_call_response(&mut stream, &outcome, ports)
                }
                BodyVerdict::Call(Callout::Grpc(_)) => {
                    verdict = pipeline.on_body_call_response(&mut stream, &admitted, ports)
                }
                BodyVerdict::Respond(reply) => return check(&reply),
                _ => break,
            }
        }
    }
});

//! The never-trap test's world: the full-pipeline config it runs (auth, limits, three providers, prompt
//! endpoints, trace), the conformance fixtures its inputs start from, and the credentials it uses.

use std::path::Path;

use serde_json::{json, Value};

use crate::idp;

pub const MAX_EVENT_BYTES: usize = 32_768;
pub const MAX_REQUEST_BYTES: usize = 262_144;
pub const MAX_RESPONSE_BYTES: usize = 524_288;

/// Inputs are shaped for one part of the filter each; heads are the cheap bulk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
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
pub struct Fixture {
    pub path: String,
    pub request: Value,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub sse: Option<String>,
}

/// What every shard draws from: fixtures, credentials, and the config.
pub struct World {
    pub config: String,
    pub fixtures: Vec<Fixture>,
    pub streams: Vec<usize>,
    pub alice: String,
    pub bob: String,
    pub tokens: Vec<String>,
    pub hostile_tokens: Vec<String>,
}

pub fn fixtures() -> (Vec<Fixture>, Value) {
    let root = tollgate_harness::repo_root().join("plugins/ai/tests/fixtures");
    let mut fixtures = Vec::new();
    let (mut providers, mut models) = (Vec::new(), Vec::new());
    // Anthropic-format clients (`/v1/messages`) too: their cases ask for models the three providers' configs
    // serve (`gpt-4o`, `claude-sonnet`, `gemini-*`), or none (a 404), so only their cases are taken.
    for provider in ["openai", "anthropic", "gemini", "anthropic_ingress"] {
        let dir = root.join(provider);
        let read = |p: &Path| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap();
        if provider != "anthropic_ingress" {
            let ai = read(&dir.join("provider.json"));
            providers.extend(ai["providers"].as_array().unwrap().iter().cloned());
            models.extend(ai["models"].as_array().unwrap().iter().cloned());
        }
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

pub fn prompt_section() -> Value {
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

pub fn world() -> World {
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

pub fn hostile_tokens(k1: &idp::SigningKey, other: &idp::SigningKey, now: u64) -> Vec<String> {
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

//! API-key authentication of request heads built from the input: credential extraction from every kind of
//! source (bearer, plain headers, query parameters, cookies), key lookup, expiry, route and model scopes,
//! per-route IP rules (from `X-Forwarded-For` or the peer address) and the credential-stripping edits.
//!
//! The first byte picks how the head is made: even, from a header map as proxy-wasm serialises it
//! (`Headers::from_serialized`, what the filter reads on every request); odd, from structured fields that
//! favour the names and values the config knows, so the fuzzer reaches past "unknown key" quickly.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sha2::{Digest, Sha256};
use tollgate_auth::{Auth, AuthDecision, RawAuthConfig};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{ConfigPath, Headers, RequestHead};

/// The keys the config knows (by SHA-256), in plain text, so inputs can present them.
const KEYS: [&str; 4] = ["tg_alice_live", "tg_alice_expired", "tg_bob_scoped", "tg_carol_reader"];

fn sha(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn config(from_forwarded_for: bool) -> Auth {
    let client_address = match from_forwarded_for {
        true => json!({"from": "x_forwarded_for", "trusted_hops": 2}),
        false => json!({"from": "source"}),
    };
    let raw = json!({
        "consumers": [
            {"name": "alice", "group": "builders", "api_keys": [
                {"id": "alice-1", "sha256": sha(KEYS[0])},
                {"id": "alice-old", "sha256": sha(KEYS[1]), "expires_at": "2023-01-01T00:00:00Z"}
            ]},
            {"name": "bob", "group": "builders", "api_keys": [
                {"id": "bob-1", "sha256": sha(KEYS[2]).to_uppercase(), "expires_at": "2030-06-01T12:00:00+02:00",
                 "routes": ["/v1/chat", "/admin"], "models": ["gpt-4o*", "claude-sonnet-4-5"]}
            ]},
            {"name": "carol", "group": "readers", "api_keys": [{"id": "carol-1", "sha256": sha(KEYS[3])}]}
        ],
        "api_key_sources": [
            {"header": "authorization", "scheme": "Bearer"},
            {"header": "x-api-key"},
            {"query": "api_key"},
            {"cookie": "tg_key"}
        ],
        "jwt_providers": [{
            "name": "corp", "issuer": "https://idp.example", "algorithms": ["HS256"],
            "keys": {"secret": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}, "token_cache_size": 0
        }],
        "routes": [
            {"path_prefix": "/health", "require": "none"},
            {"path_prefix": "/admin", "consumers": ["alice"], "ip": {"allow": ["10.0.0.0/8", "2001:db8::/32"],
             "deny": ["10.9.0.0/16"]}},
            {"path_prefix": "/v1", "methods": ["GET", "POST"], "require": "any", "groups": ["builders", "readers"],
             "consumer_methods": [{"groups": ["readers"], "methods": ["GET"]}]},
            {"path_prefix": "/keys-only", "require": "api_key"}
        ],
        "consumer_header": "x-consumer",
        "default": "api_key",
        "client_address": client_address
    });
    let raw: RawAuthConfig = serde_json::from_value(raw).expect("the fixed config parses");
    Auth::compile(raw, &ConfigPath::root().field("auth")).expect("the fixed config compiles")
}

thread_local! {
    static AUTH: [Auth; 2] = [config(true), config(false)];
}

#[derive(Arbitrary, Debug)]
enum Name {
    Authorization,
    XApiKey,
    ApiKey,
    Cookie,
    XForwardedFor,
    XConsumer,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    /// `Bearer <known key>`, with the scheme's case and spacing varied.
    Bearer {
        key: u8,
        scheme: u8,
        pad: u8,
    },
    Key(u8),
    Cookie {
        key: u8,
        before: String,
        after: String,
    },
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Query {
    None,
    Key(u8),
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Head {
    method: u8,
    path: u8,
    raw_path: Option<String>,
    query: Query,
    fields: Vec<(Name, Value)>,
    source: Option<String>,
    model: String,
}

fn known(index: u8) -> &'static str {
    KEYS[usize::from(index) % KEYS.len()]
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Bearer { key, scheme, pad } => {
            let scheme = ["Bearer", "bearer", "BEARER", "Basic"][usize::from(*scheme) % 4];
            format!("{scheme}{}{}", " ".repeat(usize::from(*pad % 3) + 1), known(*key))
        }
        Value::Key(key) => known(*key).to_string(),
        Value::Cookie { key, before, after } => format!("{before}; tg_key={}; {after}", known(*key)),
        Value::Text(text) => text.clone(),
    }
}

fn structured(head: &Head) -> (RequestHead, Option<String>) {
    let methods = ["GET", "POST", "PUT", "DELETE", "get", ""];
    let paths = ["/v1/chat/completions", "/admin/users", "/health", "/keys-only/x", "/v1/../admin", "/"];
    let mut path = match &head.raw_path {
        Some(raw) => raw.clone(),
        None => paths[usize::from(head.path) % paths.len()].to_string(),
    };
    match &head.query {
        Query::None => {}
        Query::Key(key) => path.push_str(&format!("?a=1&api_key={}&b", known(*key))),
        Query::Text(text) => {
            path.push('?');
            path.push_str(text);
        }
    }
    let mut headers = Headers::new();
    for (name, value) in &head.fields {
        let name = match name {
            Name::Authorization => "Authorization",
            Name::XApiKey => "x-api-key",
            Name::ApiKey => "api-key",
            Name::Cookie => "cookie",
            Name::XForwardedFor => "x-forwarded-for",
            Name::XConsumer => "x-consumer",
            Name::Other(name) => name,
        };
        headers.append(name, value_text(value));
    }
    let request = RequestHead {
        method: methods[usize::from(head.method) % methods.len()].to_string(),
        path,
        authority: "api.example".into(),
        scheme: "https".into(),
        headers,
    };
    (request, head.source.clone())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (head, source, model) = if mode % 2 == 0 {
        let head = RequestHead::from_headers(Headers::from_serialized(rest.to_vec()));
        let source = head.headers.get("x-fuzz-source").map(str::to_string);
        (head, source, "gpt-4o-mini".to_string())
    } else {
        let Ok(input) = Head::arbitrary_take_rest(Unstructured::new(rest)) else { return };
        let (head, source) = structured(&input);
        (head, source, input.model)
    };
    let host = MemoryHost::default();
    AUTH.with(|configs| {
        let auth = &configs[usize::from(mode / 2 % 2)];
        let _ = auth.route_of(&head);
        match auth.authenticate_from(&head, source.as_deref(), host.ports()) {
            AuthDecision::Allow(authorized) => {
                let mut headers = head.headers.clone();
                authorized.edits.apply_to(&mut headers);
                if let Err(error) = auth.check_model(&authorized, &model, host.ports()) {
                    let _ = error.to_reply();
                }
            }
            AuthDecision::Deny(error) => {
                let _ = (error.status(), error.code(), error.to_reply());
            }
            AuthDecision::NeedsKeys(_) => {}
        }
    });
});

//! The probes of the configuration reference test: for each object of the configuration, by the path the
//! README writes, a valid config that reaches it with one stray field added there.

use serde_json::{json, Value};

/// The stray field every probe adds to the object it reaches.
pub const BOGUS: &str = "zz_not_a_field";
/// The stray value tried in every field, to find enums.
pub const BOGUS_VALUE: &str = "zz_not_a_value";
/// SHA-256 of a key, for consumers that need one.
pub const SHA: &str = "f1fa854150feb0c87db1c000343b84017fa3b21ee5940fb239094553eeecce53";
/// 32 bytes, base64: long enough for HS256.
pub const SECRET: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

/// How serde reports the fields of the object a probe reaches.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A struct: the stray-field error lists its fields.
    Struct,
    /// A variant of an internally tagged enum (the tag field named here): serde lists the variant's fields
    /// but not the tag. Each variant needs its own probe.
    Tagged(&'static str),
    /// The object arm of an untagged enum: serde only says that no variant matched, so the arm's struct is
    /// deserialized directly by this function.
    Untagged(fn(Value) -> Result<(), String>),
}

pub struct Probe {
    /// The object's path as the README writes it: `[]` for any array element, `<name>` for any map key.
    pub path: &'static str,
    pub kind: Kind,
    /// A valid config but for one `BOGUS` field in the object at `path`.
    pub config: Value,
}

pub fn probe(path: &'static str, config: Value) -> Probe {
    Probe { path, kind: Kind::Struct, config }
}

pub fn tagged(path: &'static str, tag: &'static str, config: Value) -> Probe {
    Probe { path, kind: Kind::Tagged(tag), config }
}

pub fn ai() -> Value {
    json!({
        "providers": [{"name": "openai", "kind": "openai", "cluster": "openai"}],
        "models": [{"name": "gpt-4o", "provider": "openai"}]
    })
}

pub fn endpoint(fields: Value) -> Value {
    let mut endpoint = json!({
        "path": "/summarize", "model": "gpt-4o",
        "versions": [{"name": "v1", "messages": [{"role": "user", "content": "Summarize."}]}]
    });
    merge(&mut endpoint, fields);
    json!({"ai": ai(), "prompt": {"endpoints": [endpoint]}})
}

pub fn merge(into: &mut Value, fields: Value) {
    let Value::Object(fields) = fields else { panic!("not an object: {fields}") };
    into.as_object_mut().unwrap().extend(fields);
}

/// Every object the configuration has, by path. A new nested object (a struct field, the element of an
/// array of structs, the value of a map of structs, or an enum variant with fields) needs an entry here, a
/// table in the README, and a row pointing at that table from its parent's table.
pub fn probes() -> Vec<Probe> {
    let key = json!({"id": "k1", "sha256": SHA});
    let alice = json!({"name": "alice", "api_keys": [key]});
    let rule = json!({"name": "r", "requests": 1, "per": "second"});
    let price = json!({"input": 1.0, "output": 2.0, BOGUS: true});
    let message = json!({"role": "system", "content": "Be brief.", BOGUS: true});
    vec![
        probe("", json!({BOGUS: true})),
        probe("upstream_headers", json!({"upstream_headers": {BOGUS: true}})),
        probe("response_headers", json!({"response_headers": {BOGUS: true}})),
        probe("local_replies[]", json!({"local_replies": [{"status": 200, BOGUS: true}]})),
        probe("auth", json!({"auth": {BOGUS: true}})),
        probe("auth.consumers[]", json!({"auth": {"consumers": [{"name": "alice", BOGUS: true}]}})),
        probe(
            "auth.consumers[].api_keys[]",
            json!({"auth": {"consumers": [
                {"name": "alice", "api_keys": [{"id": "k1", "sha256": SHA, BOGUS: true}]}
            ]}}),
        ),
        probe(
            "auth.api_key_sources[]",
            json!({"auth": {"api_key_sources": [{"header": "x-key", BOGUS: true}]}}),
        ),
        probe("auth.jwt_sources[]", json!({"auth": {"jwt_sources": [{"cookie": "token", BOGUS: true}]}})),
        probe(
            "auth.jwt_providers[]",
            json!({"auth": {"jwt_providers": [
                {"name": "corp", "algorithms": ["HS256"], "keys": {"secret": SECRET}, BOGUS: true}
            ]}}),
        ),
        probe(
            "auth.jwt_providers[].keys",
            json!({"auth": {"jwt_providers": [
                {"name": "corp", "algorithms": ["HS256"], "keys": {"secret": SECRET, BOGUS: true}}
            ]}}),
        ),
        probe(
            "auth.jwt_providers[].keys.remote",
            json!({"auth": {"jwt_providers": [{"name": "corp", "algorithms": ["RS256"], "keys": {"remote": {
                "cluster": "idp", "authority": "idp.example", "path": "/jwks.json", BOGUS: true
            }}}]}}),
        ),
        probe("auth.routes[]", json!({"auth": {"routes": [{"path_prefix": "/", BOGUS: true}]}})),
        probe(
            "auth.routes[].ip",
            json!({"auth": {"routes": [{"path_prefix": "/", "ip": {"allow": ["10.0.0.0/8"], BOGUS: true}}]}}),
        ),
        probe(
            "auth.routes[].consumer_methods[]",
            json!({"auth": {"consumers": [alice], "routes": [{"path_prefix": "/", "consumer_methods": [
                {"consumers": ["alice"], "methods": ["GET"], BOGUS: true}
            ]}]}}),
        ),
        tagged(
            "auth.client_address",
            "from",
            json!({"auth": {"client_address": {"from": "source", BOGUS: true}}}),
        ),
        tagged(
            "auth.client_address",
            "from",
            json!({"auth": {"client_address": {"from": "x_forwarded_for", "trusted_hops": 1, BOGUS: true}}}),
        ),
        probe("ratelimit", json!({"ratelimit": {BOGUS: true}})),
        probe(
            "ratelimit.rules[]",
            json!({"ratelimit": {"rules": [{"name": "r", "requests": 1, "per": "second", BOGUS: true}]}}),
        ),
        Probe {
            path: "ratelimit.rules[].key[]",
            kind: Kind::Untagged(|object| {
                serde_json::from_value::<tollgate_ratelimit::RawHeaderKey>(object)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            config: json!({"ratelimit": {"rules": [{"name": "r", "requests": 1, "per": "second", "key": [
                {"header": "x-team", BOGUS: true}
            ]}]}}),
        },
        probe("ratelimit.prices", json!({"ratelimit": {"prices": {BOGUS: true}}})),
        probe(
            "ratelimit.prices.models.<model>",
            json!({"ratelimit": {"prices": {"models": {"gpt-4o": price}}}}),
        ),
        probe(
            "ratelimit.prices.consumers.<consumer>.<model>",
            json!({"ratelimit": {"prices": {"consumers": {"alice": {"gpt-4o": price}}}}}),
        ),
        probe(
            "ratelimit.service",
            json!({"ratelimit": {"service": {"cluster": "rls", BOGUS: true}, "rules": [rule]}}),
        ),
        probe("ai", json!({"ai": {"providers": [], "models": [], BOGUS: true}})),
        probe(
            "ai.providers[]",
            json!({"ai": {
                "providers": [{"name": "openai", "kind": "openai", "cluster": "openai", BOGUS: true}],
                "models": []
            }}),
        ),
        probe(
            "ai.models[]",
            json!({"ai": {
                "providers": ai()["providers"],
                "models": [{"name": "gpt-4o", "provider": "openai", BOGUS: true}]
            }}),
        ),
        probe(
            "ai.models[].fallbacks[]",
            json!({"ai": {
                "providers": [
                    {"name": "openai", "kind": "openai", "cluster": "openai"},
                    {"name": "spare", "kind": "openai", "cluster": "spare"}
                ],
                "models": [{"name": "gpt-4o", "provider": "openai", "fallbacks": [{"provider": "spare", BOGUS: true}]}]
            }}),
        ),
        probe("ai.limits", json!({"ai": {"providers": [], "models": [], "limits": {BOGUS: true}}})),
        probe("ai.failover", json!({"ai": {"providers": [], "models": [], "failover": {BOGUS: true}}})),
        probe("prompt", json!({"prompt": {BOGUS: true}})),
        probe("prompt.endpoints[]", endpoint(json!({BOGUS: true}))),
        probe(
            "prompt.endpoints[].variables.<name>",
            endpoint(json!({"variables": {"text": {"type": "string", BOGUS: true}}})),
        ),
        probe(
            "prompt.endpoints[].versions[]",
            endpoint(json!({"versions": [
                {"name": "v1", "messages": [{"role": "user", "content": "Hi."}], BOGUS: true}
            ]})),
        ),
        probe(
            "prompt.endpoints[].versions[].messages[]",
            endpoint(json!({"versions": [{"name": "v1", "messages": [message]}]})),
        ),
        tagged(
            "prompt.endpoints[].output",
            "mode",
            endpoint(json!({"output": {"mode": "text", BOGUS: true}})),
        ),
        tagged(
            "prompt.endpoints[].output",
            "mode",
            endpoint(json!({"output": {"mode": "json", "schema": {"type": "object"}, BOGUS: true}})),
        ),
        probe("prompt.openapi", json!({"prompt": {"openapi": {BOGUS: true}}})),
        probe(
            "prompt.decorators[]",
            json!({"ai": ai(), "prompt": {"decorators": [
                {"path_prefix": "/v1/chat", "append": [{"role": "user", "content": "Hi."}], BOGUS: true}
            ]}}),
        ),
        probe(
            "prompt.decorators[].prepend[]",
            json!({"ai": ai(), "prompt": {"decorators": [
                {"path_prefix": "/v1/chat", "prepend": [message]}
            ]}}),
        ),
        probe(
            "prompt.decorators[].append[]",
            json!({"ai": ai(), "prompt": {"decorators": [{"path_prefix": "/v1/chat", "append": [message]}]}}),
        ),
        probe("trace", json!({"trace": {BOGUS: true}})),
        probe("limits", json!({"limits": {BOGUS: true}})),
    ]
}

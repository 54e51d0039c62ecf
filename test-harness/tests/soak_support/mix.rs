//! The soak's pipeline and request mix, shared by the Envoy soak (envoy_soak.rs) and its exact-memory twin
//! in the wasmtime host (wasm_memory.rs): an API key, request/token/budget rules with prices, chat translated
//! to Anthropic and passed through to OpenAI, streaming and not, and the model list.

use serde_json::{json, Value};
use tollgate_auth::GeneratedKey;

pub const CLUSTER_HEADER: &str = "x-tollgate-cluster";
pub const OPENAI_KEY: &str = "soak-openai-key";
pub const ANTHROPIC_KEY: &str = "soak-anthropic-key";

/// The consumer every request comes from.
pub fn alice() -> GeneratedKey {
    GeneratedKey::from_random(&[5; 32], &[5, 0, 0, 1])
}

pub fn config(alice: &GeneratedKey) -> Value {
    json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [alice.config_entry()]}]},
        "ratelimit": {
            "prices": {"models": {"claude-sonnet-4-5": {"input": 3.0, "output": 15.0},
                                  "gpt-4o": {"input": 2.5, "output": 10.0}}},
            "rules": [
                {"name": "per-consumer", "key": ["consumer"], "requests": 10_000_000, "per": "hour"},
                {"name": "tokens", "key": ["consumer", "model"], "tokens": 1_000_000_000, "per": "hour"},
                {"name": "spend", "key": ["consumer"], "budget": 1_000_000.0, "per": "day"}
            ]
        },
        "ai": {
            "providers": [
                {"name": "openai", "kind": "openai", "cluster": "mock_openai", "api_key": OPENAI_KEY},
                {"name": "claude", "kind": "anthropic", "cluster": "mock_claude", "api_key": ANTHROPIC_KEY}
            ],
            "models": [{"name": "gpt-4o", "provider": "openai"}, {"name": "claude-*", "provider": "claude"}],
            "cluster_header": CLUSTER_HEADER
        }
    })
}

/// Request `n` of the mix.
pub struct Exchange {
    /// The body of a chat completion (POST /v1/chat/completions); `None` for GET /v1/models.
    pub chat: Option<Value>,
    /// What a whole answer's body contains.
    pub whole: &'static str,
}

pub fn exchange(n: usize) -> Exchange {
    let chat = |model: &str, stream: bool| {
        let mut body = json!({"model": model, "stream": stream,
                              "messages": [{"role": "user", "content": format!("soak request {n}")}]});
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        Some(body)
    };
    let (chat, whole) = match n % 5 {
        0 => (chat("claude-sonnet-4-5", false), "\"chat.completion\""),
        1 => (chat("claude-sonnet-4-5", true), "data: [DONE]"),
        2 => (chat("gpt-4o", true), "data: [DONE]"),
        3 => (None, "\"gpt-4o\""),
        _ => (chat("gpt-4o", false), "\"chat.completion\""),
    };
    Exchange { chat, whole }
}

//! What each row runs: its HTTP filters (rendered from `envoy/bench/*.yaml.tmpl`), its route, and the request
//! the load generator repeats. Credentials are made fresh for each run: an API key, a P-256 key signing one
//! ES256 token that every J request presents (so verified-token caches answer), and its JWKS.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::{ReceivedRequest, Reply};

use crate::bootstrap::{render, Template};

/// The Anthropic key Tollgate sends upstream; the mock insists on it.
pub const PROVIDER_KEY: &str = "bench-provider-key";
/// SSE events in the mock provider's streamed answer.
pub const EVENTS: usize = 50;

/// One request, repeated by the load generator.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    fn get(header: (&str, &str)) -> Self {
        Request {
            method: "GET",
            path: "/hello",
            headers: vec![(header.0.into(), header.1.into())],
            body: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Measured at saturation only.
    Plain,
    /// The AI pair: also measured at a fixed rate, the pass-through row first.
    AiPassThrough,
    Ai,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: &'static str,
    pub what: &'static str,
    pub kind: Kind,
    /// HTTP filter entries ahead of the router, as YAML list items.
    pub filters: Vec<String>,
    /// The route's action (YAML flow mapping).
    pub route: &'static str,
    pub request: Request,
}

/// The modules the wasm rows load.
pub struct Modules<'a> {
    pub tollgate: &'a Path,
    pub trivial: &'a Path,
}

pub struct Credentials {
    api_key: String,
    api_key_entry: Value,
    jwks: Value,
    token: String,
}

impl Credentials {
    pub fn new() -> anyhow::Result<Self> {
        let key = tollgate_auth::keygen()?;
        let signing = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = signing.verifying_key().to_encoded_point(false);
        let coordinate =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "bench",
                         "x": coordinate(point.x()), "y": coordinate(point.y())});
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = json!({"iss": "https://idp.example", "aud": "tollgate", "sub": "alice",
                            "email": "alice@example.com", "iat": now, "exp": now + 6 * 3600});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("bench".into());
        let encoding = EncodingKey::from_ec_der(signing.to_pkcs8_der()?.as_bytes());
        Ok(Credentials {
            api_key: key.key.clone(),
            api_key_entry: key.config_entry(),
            jwks: json!({"keys": [jwk]}),
            token: jsonwebtoken::encode(&header, &claims, &encoding)?,
        })
    }
}

/// A request limit keyed by consumer that never refuses here: the key derivation and a shared-store round
/// trip per request are what it costs.
fn huge_limit() -> Value {
    json!({"rules": [{"name": "per-consumer", "key": ["consumer"], "requests": 1_000_000_000u64, "per": "second"}]})
}

fn key_config(credentials: &Credentials) -> Value {
    json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [credentials.api_key_entry]}]},
        "ratelimit": huge_limit()
    })
}

fn key_only_config(credentials: &Credentials) -> Value {
    json!({"auth": {"consumers": [{"name": "alice", "api_keys": [credentials.api_key_entry]}]}})
}

fn jwt_config(credentials: &Credentials) -> Value {
    json!({
        "auth": {
            "jwt_providers": [{
                "name": "corp", "issuer": "https://idp.example", "audiences": ["tollgate"], "algorithms": ["ES256"],
                "keys": {"jwks": credentials.jwks}, "claims_to_headers": {"email": "x-user-email"}
            }]
        },
        "ratelimit": huge_limit()
    })
}

pub fn ai_config() -> Value {
    json!({"ai": {
        "providers": [{"name": "claude", "kind": "anthropic", "cluster": "anthropic", "api_key": PROVIDER_KEY,
                       "api_version": "2023-06-01", "default_max_tokens": 1024}],
        "models": [{"name": "claude-*", "provider": "claude"}]
    }})
}

fn wasm_filter(name: &str, module: &Path, config: &Value) -> anyhow::Result<String> {
    // The configuration travels as a YAML string: a JSON string literal is a valid double-quoted YAML scalar.
    let config_json = serde_json::to_string(&config.to_string())?;
    let wasm_path = serde_json::to_string(&module.display().to_string())?;
    render(Template::Wasm, &[("name", name), ("config_json", &config_json), ("wasm_path", &wasm_path)])
}

pub fn rows(credentials: &Credentials, modules: &Modules, ai: &AiTraffic) -> anyhow::Result<Vec<Row>> {
    const TO_UPSTREAM: &str = "{ cluster: upstream }";
    let key_header = ("x-api-key", credentials.api_key.as_str());
    let bearer = format!("Bearer {}", credentials.token);
    let jwt_header = ("authorization", bearer.as_str());
    let limit = render(Template::LocalRateLimit, &[])?;
    let rbac = render(Template::RbacKey, &[("api_key", &serde_json::to_string(&credentials.api_key)?)])?;
    let jwt_authn =
        render(Template::JwtAuthn, &[("jwks_json", &serde_json::to_string(&credentials.jwks.to_string())?)])?;
    let plain = |id, what, filters, request| Row {
        id,
        what,
        kind: Kind::Plain,
        filters,
        route: TO_UPSTREAM,
        request,
    };
    // A GET with the API key through one wasm filter: the trivial filter's rows and Tollgate's K rows.
    let keyed = |id, what, name, module, config: Value| -> anyhow::Result<Row> {
        Ok(plain(id, what, vec![wasm_filter(name, module, &config)?], Request::get(key_header)))
    };
    Ok(vec![
        plain("A", "bare Envoy, GET to the upstream", vec![], Request::get(key_header)),
        plain(
            "N-K",
            "native: RBAC key header match + local_ratelimit",
            vec![rbac, limit.clone()],
            Request::get(key_header),
        ),
        plain(
            "N-J",
            "native: jwt_authn ES256 (cached) + local_ratelimit",
            vec![jwt_authn, limit],
            Request::get(jwt_header),
        ),
        keyed("T", "trivial wasm filter (reads one header)", "trivial", modules.trivial, json!({}))?,
        keyed("T+M", "trivial wasm filter + 4 counter increments", "trivial", modules.trivial, json!(4))?,
        keyed(
            "T+H",
            "trivial wasm filter + key removed, consumer header set",
            "trivial",
            modules.trivial,
            json!("edits"),
        )?,
        keyed(
            "T+S",
            "trivial wasm filter + 16 SHA-256 digests of the key",
            "trivial",
            modules.trivial,
            json!("sha256"),
        )?,
        keyed(
            "T+K",
            "trivial wasm filter + K's host calls and digest",
            "trivial",
            modules.trivial,
            json!("k_calls"),
        )?,
        keyed(
            "T+K5",
            "trivial wasm filter + the five host calls K needs",
            "trivial",
            modules.trivial,
            json!("k_essential"),
        )?,
        keyed("P", "Tollgate with an empty config (its floor)", "tollgate", modules.tollgate, json!({}))?,
        keyed(
            "K0",
            "Tollgate: API key, no limit",
            "tollgate",
            modules.tollgate,
            key_only_config(credentials),
        )?,
        keyed("K", "Tollgate: API key + local limit", "tollgate", modules.tollgate, key_config(credentials))?,
        plain(
            "J",
            "Tollgate: ES256 JWT (cached) + local limit",
            vec![wasm_filter("tollgate", modules.tollgate, &jwt_config(credentials))?],
            Request::get(jwt_header),
        ),
        Row {
            id: "AI-pass",
            what: "bare Envoy, 5 KB chat POST, 50-event SSE back",
            kind: Kind::AiPassThrough,
            filters: vec![],
            route: TO_UPSTREAM,
            request: ai.request.clone(),
        },
        Row {
            id: "AI",
            what: "Tollgate: OpenAI -> Anthropic, SSE -> OpenAI chunks",
            kind: Kind::Ai,
            filters: vec![wasm_filter("tollgate", modules.tollgate, &ai_config())?],
            route: "{ cluster_header: x-tollgate-cluster }",
            request: ai.request.clone(),
        },
    ])
}

/// The AI rows' traffic: a 5 KB streaming OpenAI chat request, and the mock Anthropic provider's answer to
/// its translation (50 SSE events), which the upstream serves to both AI rows.
pub struct AiTraffic {
    pub request: Request,
    pub events: Vec<Vec<u8>>,
}

impl AiTraffic {
    pub fn new() -> anyhow::Result<Self> {
        // "echo:" and 43 words: one text delta each, plus six framing events, make fifty.
        let chat = tollgate_harness::mock_llm::bench_chat_request(true, EVENTS - 7);
        let body = chat.to_string().into_bytes();
        anyhow::ensure!(
            (4_500..6_000).contains(&body.len()),
            "the chat request is {} bytes, not about 5 KB",
            body.len()
        );
        let events = match MockLlm::new(ProviderKind::Anthropic, PROVIDER_KEY).answer(&translated(&chat)) {
            Reply::Stream { status: 200, chunks, .. } => {
                chunks.into_iter().map(|chunk| chunk.data).collect::<Vec<_>>()
            }
            other => anyhow::bail!("the Anthropic mock did not stream: {other:?}"),
        };
        anyhow::ensure!(events.len() == EVENTS, "the mock stream has {} events, not {EVENTS}", events.len());
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), "Bearer client-key".to_owned()),
        ];
        Ok(AiTraffic {
            request: Request { method: "POST", path: "/v1/chat/completions", headers, body },
            events,
        })
    }
}

/// The Anthropic request the mock needs to answer `chat` as it will answer Tollgate's translation of it (the
/// mock's reply depends only on the model, the stream flag and the last user text).
fn translated(chat: &Value) -> ReceivedRequest {
    let last = chat.get("messages").and_then(Value::as_array).and_then(|m| m.last());
    let content = last.and_then(|m| m.get("content")).cloned().unwrap_or(Value::Null);
    let body = json!({"model": chat.get("model"), "max_tokens": 512, "stream": true,
                      "messages": [{"role": "user", "content": content}]});
    ReceivedRequest {
        method: "POST".into(),
        path: "/v1/messages".into(),
        headers: vec![
            ("x-api-key".into(), PROVIDER_KEY.into()),
            ("anthropic-version".into(), "2023-06-01".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

//! The requests the benchmarks drive through `dist/tollgate.wasm`: one workload per filter configuration
//! and traffic shape, each able to build its next request (a fresh JWT for the uncached case) and to check
//! that the first exchange did what the workload is about, so a refused request never passes for a fast one.

use std::time::UNIX_EPOCH;

use anyhow::ensure;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use tollgate_harness::host::{Exchange, Host, Request, Response, Vm};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::{ReceivedRequest, Reply};

const PROVIDER_KEY: &str = "bench-provider-key";
/// Events in the streamed Anthropic answer: each is one body chunk.
const SSE_EVENTS: usize = 50;

/// One configuration and the traffic it sees.
pub struct Workload {
    pub name: &'static str,
    host: Host,
    pub config: String,
    next_request: Box<dyn FnMut() -> anyhow::Result<Request>>,
    pub response: Response,
    /// The first exchange must reach the upstream at this path (None: the filter answers itself).
    upstream_path: Option<&'static str>,
    /// ... and the client must get a body containing this.
    body_contains: &'static str,
}

impl Workload {
    fn new(
        name: &'static str,
        host: &Host,
        config: impl Into<String>,
        response: Response,
        next_request: impl FnMut() -> anyhow::Result<Request> + 'static,
    ) -> Self {
        Self {
            name,
            host: host.clone(),
            config: config.into(),
            next_request: Box::new(next_request),
            response,
            upstream_path: None,
            body_contains: "",
        }
    }

    fn upstream(mut self, path: &'static str) -> Self {
        self.upstream_path = Some(path);
        self
    }

    fn body_contains(mut self, needle: &'static str) -> Self {
        self.body_contains = needle;
        self
    }

    /// A VM of the workload's configuration that has served (and checked) one request, so caches are warm.
    pub fn start(&mut self) -> anyhow::Result<Vm> {
        let mut vm = self.host.plugin(&self.config).start()?;
        let first = self.run(&mut vm)?;
        let status = first.downstream.status;
        let body = first.downstream.body_str();
        ensure!(status == 200, "{}: the first request got {status}: {body}", self.name);
        let path = first.upstream.as_ref().map(|u| u.path.as_str());
        ensure!(path == self.upstream_path, "{}: the upstream got {path:?}", self.name);
        ensure!(body.contains(self.body_contains), "{}: the client got {body}", self.name);
        Ok(vm)
    }

    /// Sends the next request and plays the response; forgets the finished exchange and the logs so
    /// that millions of requests run in constant memory.
    pub fn run(&mut self, vm: &mut Vm) -> anyhow::Result<Exchange> {
        let exchange = vm.send((self.next_request)()?).respond_with(self.response.clone()).run()?;
        vm.forget_finished();
        vm.clear_logs();
        Ok(exchange)
    }
}

/// Every workload, in report order: the harness floor, then `tollgate` (dist/tollgate.wasm) ones.
pub fn all(tollgate: &Host) -> anyhow::Result<Vec<Workload>> {
    let mut workloads = vec![harness_floor()?];
    workloads.extend(headers_only(tollgate)?);
    workloads.extend(ai(tollgate)?);
    Ok(workloads)
}

/// A module whose callbacks return at once, driven like the headers path: what the host's guest-call
/// machinery alone adds to every number (each measured guest call includes it once).
fn harness_floor() -> anyhow::Result<Workload> {
    let host = Host::from_bytes(EMPTY_MODULE)?;
    Ok(Workload::new("harness_floor", &host, "", Response::status(200), || Ok(Request::get("/v1/models")))
        .upstream("/v1/models"))
}

const EMPTY_MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32)))"#;

/// Bodiless GETs answered with headers only: what the filter costs on the headers path.
fn headers_only(host: &Host) -> anyhow::Result<Vec<Workload>> {
    let ok = || Response::status(200).header("content-type", "application/json");
    let get = |path: &str| Request::get(path);
    let api_key = tollgate_auth::GeneratedKey::from_random(&[7; 32], &[1, 2, 3, 4]);
    let consumers = json!([{"name": "alice", "api_keys": [api_key.config_entry()]}]);
    // A request limit keyed by the consumer that never refuses here: the key derivation and one CAS
    // round trip on the shared store per request.
    let limited = json!({"auth": {"consumers": consumers}, "ratelimit": {"rules": [
        {"name": "per-consumer", "key": ["consumer"], "requests": 1_000_000_000u64, "per": "second"}
    ]}});
    let signer = Es256::new()?;
    let jwt = json!({"auth": {"jwt_providers": [{
        "name": "corp", "issuer": "https://idp.example", "audiences": ["tollgate"], "algorithms": ["ES256"],
        "keys": {"jwks": {"keys": [signer.jwk.clone()]}}, "claims_to_headers": {"email": "x-user-email"}
    }]}});
    let now = host.now().duration_since(UNIX_EPOCH)?.as_secs();
    let cached = format!("Bearer {}", signer.sign(now, 0)?);
    let mut jti = 0;
    let (key, limited_key) = (api_key.key.clone(), api_key.key);
    Ok(vec![
        Workload::new("pass_through", host, "{}", ok(), move || Ok(get("/v1/models"))),
        Workload::new(
            "header_edits",
            host,
            r#"{"upstream_headers":{"set":{"x-tollgate":"on"},"remove":["x-internal"]},
                "response_headers":{"set":{"x-served-by":"tollgate"}}}"#,
            ok(),
            move || Ok(get("/v1/models").header("x-internal", "secret")),
        ),
        Workload::new(
            "local_reply",
            host,
            r#"{"local_replies":[{"path_prefix":"/tollgate/ping","status":200,"body":{"pong":true}}]}"#,
            ok(),
            move || Ok(get("/tollgate/ping")),
        )
        .body_contains("pong"),
        // SHA-256 of the presented key, one map lookup, credential stripping and the consumer header.
        Workload::new(
            "api_key",
            host,
            json!({"auth": {"consumers": consumers}}).to_string(),
            ok(),
            move || Ok(get("/v1/models").header("x-api-key", &key)),
        ),
        Workload::new("api_key_local_limit", host, limited.to_string(), ok(), move || {
            Ok(get("/v1/models").header("x-api-key", &limited_key))
        }),
        // The same token every time: after the first request the per-worker token cache answers.
        Workload::new("jwt_es256_cached", host, jwt.to_string(), ok(), move || {
            Ok(get("/v1/models").header("authorization", &cached))
        }),
        // A token never seen before on every request (signed natively, outside the measured guest
        // time): parse, ECDSA P-256 check, claims, and a cache insert that evicts once the cache is full.
        Workload::new("jwt_es256_uncached", host, jwt.to_string(), ok(), move || {
            jti += 1;
            Ok(get("/v1/models").header("authorization", &format!("Bearer {}", signer.sign(now, jti)?)))
        }),
    ]
    .into_iter()
    .map(|w| if w.name == "local_reply" { w } else { w.upstream("/v1/models") })
    .collect())
}

/// A 5 KB OpenAI chat request and a 50-event streamed one, each passed through by an empty config and
/// translated for Anthropic (the answers translated back) by an AI config. The upstream answers come
/// from the harness's Anthropic mock, so they are the provider's real wire format.
fn ai(host: &Host) -> anyhow::Result<Vec<Workload>> {
    let ai_config = json!({"ai": {
        "providers": [{"name": "claude", "kind": "anthropic", "cluster": "anthropic", "api_key": PROVIDER_KEY,
                       "api_version": "2023-06-01", "default_max_tokens": 1024}],
        "models": [{"name": "claude-*", "provider": "claude"}]
    }})
    .to_string();
    let chat = tollgate_harness::mock_llm::bench_chat_request(false, 3);
    let chat_response = response(anthropic_reply(&chat))?;
    let size = post(&chat).body.concat().len();
    ensure!((4_500..6_000).contains(&size), "the chat request is {size} bytes, not about 5 KB");
    // "echo:" and 43 words: one text delta each, plus six framing events, make fifty.
    let stream = tollgate_harness::mock_llm::bench_chat_request(true, SSE_EVENTS - 7);
    let stream_response = response(anthropic_reply(&stream))?;
    let events = stream_response.body.0.len();
    ensure!(events == SSE_EVENTS, "the mock stream has {events} events, not {SSE_EVENTS}");
    let (chat_body, stream_body) = (chat.clone(), stream.clone());
    Ok(vec![
        Workload::new("chat_5kb_pass_through", host, "{}", chat_response.clone(), move || Ok(post(&chat)))
            .upstream("/v1/chat/completions"),
        Workload::new("chat_5kb_openai_to_anthropic", host, ai_config.clone(), chat_response, move || {
            Ok(post(&chat_body))
        })
        .upstream("/v1/messages")
        .body_contains("chat.completion"),
        Workload::new("sse_50_pass_through", host, "{}", stream_response.clone(), move || Ok(post(&stream)))
            .upstream("/v1/chat/completions"),
        Workload::new("sse_50_anthropic_to_openai", host, ai_config, stream_response, move || {
            Ok(post(&stream_body))
        })
        .upstream("/v1/messages")
        .body_contains("chat.completion.chunk"),
    ])
}

fn post(body: &Value) -> Request {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer client-key")
        .body(body.to_string())
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
        headers: vec![
            ("x-api-key".into(), PROVIDER_KEY.into()),
            ("anthropic-version".into(), "2023-06-01".into()),
        ],
        body: request.to_string().into_bytes(),
    };
    MockLlm::new(ProviderKind::Anthropic, PROVIDER_KEY).answer(&received)
}

fn response(reply: Reply) -> anyhow::Result<Response> {
    reply.to_host_response().ok_or_else(|| anyhow::anyhow!("the Anthropic mock echoed instead of answering"))
}

/// A fixed P-256 key signing ES256 tokens, and its public JWK.
struct Es256 {
    encoding: EncodingKey,
    jwk: Value,
}

impl Es256 {
    fn new() -> anyhow::Result<Self> {
        let private = p256::ecdsa::SigningKey::from_slice(&[7; 32])?;
        let point = private.verifying_key().to_encoded_point(false);
        let coordinate =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        Ok(Es256 {
            encoding: EncodingKey::from_ec_der(private.to_pkcs8_der()?.as_bytes()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": "k1",
                        "x": coordinate(point.x()), "y": coordinate(point.y())}),
        })
    }

    /// A token valid for an hour; `n` makes each one distinct.
    fn sign(&self, now: u64, n: u64) -> anyhow::Result<String> {
        let claims = json!({"iss": "https://idp.example", "aud": "tollgate", "sub": "alice",
                            "email": "alice@example.com", "iat": now, "exp": now + 3600, "jti": n});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

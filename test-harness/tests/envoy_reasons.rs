//! End to end: every reason code in the catalogue (`tollgate_pipeline::reasons::all()`, the README's
//! troubleshooting table) is produced by a real Envoy (`--concurrency 2`) running `dist/tollgate.wasm`. Each
//! request gets the documented status, the code in the JSON body's `error.code` and in `x-tollgate-reason`,
//! and a body that names no secret. The test records every code it saw and fails if the catalogue holds one
//! no request here produced, so a new code cannot ship without its end-to-end case.
//! Needs Envoy and the built module: `./build.sh test` provides both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

#[path = "auth_support/idp.rs"]
mod idp;
#[path = "prompt_support/gateway.rs"]
mod prompt_gateway;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context as _, Result};
use serde_json::{json, Value};
use tollgate_harness::envoy::{Answer, Envoy};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::{EchoUpstream, Reply};
use tollgate_pipeline::reasons;

use idp::{api_key, claims, es256, forge, jwks, AUDIENCE, ISSUER};

const CLUSTER_HEADER: &str = "x-tollgate-cluster";

/// The codes the requests below produced, and the secrets no answer may contain.
#[derive(Default)]
struct Seen {
    codes: BTreeSet<String>,
    secrets: Vec<String>,
}

impl Seen {
    fn secret(&mut self, secret: &str) -> String {
        self.secrets.push(secret.to_owned());
        secret.to_owned()
    }

    fn documented_status(code: &str) -> Result<u16> {
        let reason = reasons::all().into_iter().find(|r| r.code == code);
        Ok(reason.with_context(|| format!("{code} is not in the catalogue"))?.status)
    }

    fn keeps_secrets(&self, answer: &Answer) -> Result<()> {
        for secret in &self.secrets {
            ensure!(!answer.body.contains(secret.as_str()), "the answer reveals a secret: {answer:?}");
            for (name, value) in &answer.headers {
                ensure!(
                    !value.to_str().unwrap_or("").contains(secret.as_str()),
                    "header {name} reveals a secret"
                );
            }
        }
        Ok(())
    }

    /// A refusal or failure of Tollgate's own: documented status, code in body and header.
    fn refused(&mut self, answer: &Answer, code: &str) -> Result<()> {
        let status = Self::documented_status(code)?;
        ensure!(answer.status == status, "{code}: wanted {status}, got {answer:?}");
        ensure!(answer.openai_error()?.1 == code, "{code}: body code differs: {answer:?}");
        ensure!(answer.header("x-tollgate-reason") == Some(code), "{code}: header differs: {answer:?}");
        self.keeps_secrets(answer)?;
        self.codes.insert(code.to_owned());
        Ok(())
    }

    /// A provider's error, translated: its own code stays in the body, the header says `provider_error`.
    fn provider_error(&mut self, answer: &Answer, provider_code: &str) -> Result<()> {
        ensure!(answer.status == Self::documented_status("provider_error")?, "{answer:?}");
        ensure!(answer.openai_error()?.1 == provider_code, "the provider's code is kept: {answer:?}");
        ensure!(answer.header("x-tollgate-reason") == Some("provider_error"), "{answer:?}");
        self.keeps_secrets(answer)?;
        self.codes.insert("provider_error".to_owned());
        Ok(())
    }

    /// A stream that failed after its 200 went out: the code is in a last error event, before `[DONE]`.
    fn stream_failed(&mut self, answer: &Answer, code: &str) -> Result<()> {
        ensure!(answer.status == Self::documented_status(code)?, "{code}: {answer:?}");
        let data: Vec<&str> = answer.body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
        ensure!(data.last() == Some(&"[DONE]"), "the stream ends with [DONE]: {answer:?}");
        let error: Value = serde_json::from_str(data.get(data.len().saturating_sub(2)).unwrap_or(&""))
            .with_context(|| format!("no error event before [DONE]: {answer:?}"))?;
        ensure!(error.pointer("/error/code") == Some(&json!(code)), "{code}: {error}");
        self.keeps_secrets(answer)?;
        self.codes.insert(code.to_owned());
        Ok(())
    }
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn chat(model: &str, max_tokens: u64) -> String {
    json!({"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
}

/// API keys, consumers, routes, IP and method rules, and JWTs from an inline JWKS and a remote one that
/// cannot be fetched.
fn auth_refusals(seen: &mut Seen) -> Result<()> {
    let (alice, bob, carol) = (api_key(1), api_key(2), api_key(3));
    let (signer, impostor) = (es256(7), es256(8));
    let idp_down = EchoUpstream::start_with(|_| Reply::text(500, "idp down"))?;
    let upstream = EchoUpstream::start()?;
    let corp = |extra: Value| {
        let mut provider = json!({"name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE],
                                  "algorithms": ["ES256"], "keys": {"jwks": jwks(&[signer.jwk("k1")])},
                                  "required_claims": ["email"], "max_token_bytes": 2048});
        provider.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        provider
    };
    // Envoy's own caps are 60 KiB and 100 fields; the filter's bound here is lower, so it answers first.
    let config = json!({"limits": {"max_request_headers": 20}, "auth": {
        "consumers": [
            {"name": "alice", "group": "staff", "api_keys": [{"id": alice.id, "sha256": alice.sha256, "routes": ["/api", "/staff"]}]},
            {"name": "bob", "group": "readers", "api_keys": [{"id": bob.id, "sha256": bob.sha256, "models": ["gpt-4o"]}]},
            {"name": "carol", "api_keys": [{"id": carol.id, "sha256": carol.sha256, "expires_at": "2020-01-01T00:00:00Z"}]}
        ],
        "jwt_providers": [
            corp(json!({})),
            {"name": "remote", "algorithms": ["ES256"],
             "keys": {"remote": {"cluster": "jwks", "authority": "idp.test", "path": "/jwks.json", "timeout_ms": 500}}}
        ],
        "routes": [
            {"path_prefix": "/internal", "ip": {"allow": ["10.0.0.0/8"]}},
            {"path_prefix": "/api", "consumer_methods": [{"groups": ["readers"], "methods": ["GET"]}]},
            {"path_prefix": "/staff", "groups": ["staff"]},
            {"path_prefix": "/jwt", "require": "jwt", "jwt_providers": ["corp"]},
            {"path_prefix": "/remote", "require": "jwt", "jwt_providers": ["remote"]}
        ]
    }});
    let envoy = Envoy::builder(config.to_string())
        .upstream(upstream.addr())
        .cluster("jwks", idp_down.addr())
        .start()?;
    let (alice_key, bob_key, carol_key) =
        (seen.secret(&alice.key), seen.secret(&bob.key), seen.secret(&carol.key));
    let key = |path: &str, key: &str| envoy.get(path, &[("authorization", &bearer(key))]);

    let crowded: Vec<(String, String)> = (0..30).map(|i| (format!("x-extra-{i}"), "1".to_string())).collect();
    let crowded: Vec<(&str, &str)> = crowded.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    seen.refused(&envoy.get("/api/orders", &crowded)?, "request_headers_too_large")?;
    seen.refused(&envoy.get("/api/orders", &[])?, "missing_credentials")?;
    let unknown = seen.secret("tg_not_a_key_at_all");
    seen.refused(&key("/api/orders", &unknown)?, "invalid_api_key")?;
    seen.refused(&key("/api/orders", &carol_key)?, "expired_api_key")?;
    seen.refused(&key("/elsewhere", &alice_key)?, "key_scope_route")?;
    let other_model =
        envoy.post_json("/models", &[("authorization", &bearer(&bob_key))], &chat("gpt-5", 5))?;
    seen.refused(&other_model, "key_scope_model")?;
    seen.refused(&key("/staff/payroll", &bob_key)?, "consumer_not_allowed")?;
    seen.refused(&key("/internal/metrics", &alice_key)?, "ip_denied")?;
    let write = envoy.post_json("/api/orders", &[("authorization", &bearer(&bob_key))], "{}")?;
    seen.refused(&write, "method_not_allowed_for_consumer")?;

    let now = now_secs();
    let token = |key: &idp::SigningKey, kid: &str, edit: &dyn Fn(&mut Value)| {
        let mut c = claims("dave", now);
        edit(&mut c);
        key.sign(Some(kid), &c)
    };
    let jwt = |token: &str| envoy.get("/jwt/profile", &[("authorization", &bearer(token))]);
    let good = token(&signer, "k1", &|_| {});
    assert_eq!(jwt(&good)?.status, 200, "the provider accepts its own tokens");
    let cases: Vec<(String, &str)> = vec![
        (format!("{}.{}.c2ln", idp::b64(b"not json"), idp::b64(b"{}")), "jwt_malformed"),
        (format!("{}.{}.{}", "a".repeat(1500), "b".repeat(1500), "c"), "jwt_too_large"),
        (forge(&json!({"alg": "HS256", "kid": "k1"}), &claims("dave", now)), "jwt_algorithm_not_allowed"),
        (token(&signer, "k9", &|_| {}), "jwt_unknown_key"),
        (token(&impostor, "k1", &|_| {}), "jwt_bad_signature"),
        (token(&signer, "k1", &|c| c["exp"] = json!(now - 3600)), "jwt_expired"),
        (token(&signer, "k1", &|c| c["nbf"] = json!(now + 3600)), "jwt_not_yet_valid"),
        (token(&signer, "k1", &|c| c["iss"] = json!("https://elsewhere.example")), "jwt_wrong_issuer"),
        (token(&signer, "k1", &|c| c["aud"] = json!("someone-else")), "jwt_wrong_audience"),
        (token(&signer, "k1", &|c| drop(c.as_object_mut().unwrap().remove("email"))), "jwt_missing_claim"),
        (token(&signer, "k1", &|c| c["sub"] = json!(42)), "jwt_bad_consumer_claim"),
    ];
    for (token, code) in cases {
        let token = seen.secret(&token);
        seen.refused(&jwt(&token)?, code)?;
    }
    let unfetchable = seen.secret(&good);
    seen.refused(
        &envoy.get("/remote/x", &[("authorization", &bearer(&unfetchable))])?,
        "jwt_keys_unavailable",
    )?;
    ensure!(upstream.received().len() == 1, "only the good token went upstream: {:?}", upstream.received());
    Ok(())
}

/// The AI gateway's own refusals, and what it makes of a provider that fails.
fn ai_refusals(seen: &mut Seen) -> Result<()> {
    let mock = MockLlm::new(ProviderKind::OpenAi, "openai-key");
    let provider = EchoUpstream::start_with(move |request| {
        let body: Value = serde_json::from_str(&request.body_text()).unwrap_or_default();
        let model = body["model"].as_str().unwrap_or_default().to_owned();
        match model.as_str() {
            "garbage" => Reply::text(200, "<html>not a completion</html>"),
            // Headers that end the stream: Envoy has no body for the translation to replace.
            "empty" => Reply::text(200, ""),
            "empty-stream" => Reply::Fixed {
                status: 200,
                headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
                body: Vec::new(),
            },
            "failing" => Reply::json(500, &json!({"error": {"message": "the model is overloaded",
                                                          "type": "server_error", "code": "overloaded"}})),
            "cut-short" => Reply::sse([(Duration::from_millis(1),
                "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"cut-short\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hel\"},\"finish_reason\":null}]}\n\n")]),
            _ => mock.answer(request),
        }
    })?;
    let claude = MockLlm::new(ProviderKind::Anthropic, "anthropic-key").start()?;
    let config = json!({"ai": {
        "providers": [
            {"name": "openai", "kind": "openai", "cluster": "mock_openai", "api_key": seen.secret("openai-key")},
            {"name": "claude", "kind": "anthropic", "cluster": "mock_claude", "api_key": seen.secret("anthropic-key")}
        ],
        "models": [
            {"name": "claude-*", "provider": "claude"},
            {"name": "gpt-4o", "provider": "openai"},
            {"name": "garbage", "provider": "openai"},
            {"name": "failing", "provider": "openai"},
            {"name": "cut-short", "provider": "openai"},
            {"name": "empty", "provider": "openai"},
            {"name": "empty-stream", "provider": "openai"}
        ],
        "unsupported_fields": "reject",
        "limits": {"max_request_bytes": 4096},
        "cluster_header": CLUSTER_HEADER
    }});
    let envoy = Envoy::builder(config.to_string())
        .route_by_header(CLUSTER_HEADER)
        .cluster("mock_openai", provider.addr())
        .cluster("mock_claude", claude.addr())
        .start()?;
    let post = |body: &str| envoy.post_json("/v1/chat/completions", &[], body);

    assert_eq!(post(&chat("gpt-4o", 5))?.status, 200, "the gateway serves a good request");
    seen.refused(&post("{\"model\": \"gpt-4o\", \"messages\": ")?, "invalid_request")?;
    seen.refused(&post(&chat("no-such-model", 5))?, "model_not_found")?;
    let mut logprobs: Value = serde_json::from_str(&chat("claude-sonnet-4-5", 5))?;
    logprobs["logprobs"] = json!(true);
    seen.refused(&post(&logprobs.to_string())?, "unsupported_parameter")?;
    let listing = envoy.get("/v1/chat/completions", &[])?;
    seen.refused(&listing, "method_not_allowed")?;
    ensure!(listing.header("allow") == Some("POST"), "{listing:?}");
    let mut huge: Value = serde_json::from_str(&chat("gpt-4o", 5))?;
    huge["messages"][0]["content"] = json!("x".repeat(8192));
    seen.refused(&post(&huge.to_string())?, "body_too_large")?;
    seen.refused(&post(&chat("garbage", 5))?, "bad_upstream_response")?;
    seen.provider_error(&post(&chat("failing", 5))?, "overloaded")?;
    let mut streamed: Value = serde_json::from_str(&chat("cut-short", 5))?;
    streamed["stream"] = json!(true);
    seen.stream_failed(&post(&streamed.to_string())?, "upstream_stream_truncated")?;
    // A provider answer whose headers end the stream still gets a body: the error, or the stream's last events.
    seen.refused(&post(&chat("empty", 5))?, "bad_upstream_response")?;
    let mut empty_stream: Value = serde_json::from_str(&chat("empty-stream", 5))?;
    empty_stream["stream"] = json!(true);
    seen.stream_failed(&post(&empty_stream.to_string())?, "upstream_stream_truncated")?;
    ensure!(claude.received().is_empty(), "the refused Claude request never left: {:?}", claude.received());
    Ok(())
}

/// Request limits (local and through a rate limit service that is not there), token limits and budgets.
fn limit_refusals(seen: &mut Seen) -> Result<()> {
    let provider = MockLlm::new(ProviderKind::OpenAi, "openai-key").start()?;
    // Nothing listens on the service's port once this listener is gone.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = json!({
        "ai": {
            "providers": [{"name": "openai", "kind": "openai", "cluster": "mock_openai", "api_key": "openai-key"}],
            "models": [{"name": "*", "provider": "openai"}],
            "cluster_header": CLUSTER_HEADER
        },
        "ratelimit": {
            "service": {"cluster": "ratelimit", "domain": "tollgate", "timeout_ms": 300},
            "prices": {"models": {"priced": {"input": 10.0, "output": 10.0}}},
            "rules": [
                {"name": "once", "routes": ["/v1/chat/"], "key": [{"header": "x-team"}], "requests": 1, "per": "hour"},
                {"name": "fleet", "mode": "global", "routes": ["/v1/embeddings"], "failure_mode": "closed"},
                {"name": "tokens", "routes": ["/v1/chat/"], "key": ["model"], "tokens": 1000, "per": "day"},
                {"name": "spend", "routes": ["/v1/chat/"], "key": ["model"], "budget": 0.001, "per": "day"}
            ]
        }
    });
    let envoy = Envoy::builder(config.to_string())
        .route_by_header(CLUSTER_HEADER)
        .cluster("mock_openai", provider.addr())
        .grpc_cluster("ratelimit", nowhere)
        .start()?;
    // One request an hour per team: each case below is its own team, so only the rule it is about refuses.
    let post = |team: &str, body: &str| envoy.post_json("/v1/chat/completions", &[("x-team", team)], body);

    seen.refused(&post("t1", &chat("priced", 5000))?, "token_limit")?;
    seen.refused(&post("t2", &chat("priced", 500))?, "budget_exceeded")?;
    seen.refused(&post("t3", &chat("unpriced", 5))?, "model_not_priced")?;
    ensure!(
        provider.received().is_empty(),
        "no refused request reached the provider: {:?}",
        provider.received()
    );
    assert_eq!(post("red", &chat("priced", 5))?.status, 200, "a request every rule has room for");
    seen.refused(&post("red", &chat("priced", 5))?, "rate_limited")?;
    let embeddings = json!({"model": "priced", "input": "hello"}).to_string();
    let closed = envoy.post_json("/v1/embeddings", &[], &embeddings)?;
    seen.refused(&closed, "rate_limit_service_unavailable")?;
    ensure!(
        provider.received().len() == 1,
        "only the admitted request went upstream: {:?}",
        provider.received()
    );
    Ok(())
}

/// A prompt endpoint's own refusals and failures: bad variables, a method it does not take, an answer with no
/// text, and JSON that does not fit the output schema on the retry either.
fn prompt_refusals(seen: &mut Seen) -> Result<()> {
    use prompt_gateway::{Gateway, ALWAYS_BAD, ANTHROPIC_KEY, CLASSIFY, NO_TEXT, OPENAI_KEY};
    let gateway = Gateway::start()?;
    seen.secret(&gateway.key);
    seen.secret(OPENAI_KEY);
    seen.secret(ANTHROPIC_KEY);
    let classify = |text: &Value| gateway.post(CLASSIFY, &[], &json!({"text": text}).to_string());

    assert_eq!(classify(&json!("fine"))?.status, 200, "the endpoint serves a good request");
    seen.refused(&classify(&json!(5))?, "invalid_variables")?;
    let listing = gateway.get(CLASSIFY)?;
    seen.refused(&listing, "prompt_method_not_allowed")?;
    ensure!(listing.header("allow") == Some("POST"), "{listing:?}");
    seen.refused(&classify(&json!(format!("{NO_TEXT} please")))?, "prompt_no_output")?;
    seen.refused(&classify(&json!(format!("{ALWAYS_BAD} please")))?, "output_schema_mismatch")?;
    ensure!(gateway.upstream.received().is_empty(), "a prompt request went through the router");
    Ok(())
}

#[test]
fn every_documented_reason_is_produced_by_a_real_envoy() -> Result<()> {
    let mut seen = Seen::default();
    auth_refusals(&mut seen)?;
    ai_refusals(&mut seen)?;
    limit_refusals(&mut seen)?;
    prompt_refusals(&mut seen)?;
    let documented: BTreeSet<String> = reasons::all().into_iter().map(|r| r.code.to_owned()).collect();
    let missing: Vec<&String> = documented.difference(&seen.codes).collect();
    ensure!(missing.is_empty(), "documented but never produced here: {missing:?}");
    Ok(())
}

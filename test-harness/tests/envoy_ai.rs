//! End to end: the official `openai` Python SDK (from PyPI, unmodified) talks to a real Envoy
//! (`--concurrency 2`) running `dist/tollgate.wasm`, configured for five providers, each an Envoy cluster in front
//! of a harness mock that speaks that provider's wire format. The route takes its cluster from the
//! `x-tollgate-cluster` header the filter sets, so a request landing on the right mock also proves Envoy
//! re-evaluated the route after the filter's edits. The test checks what the SDK parsed and what each mock
//! received (path, the provider key injected, the client's key gone).
//! Needs Envoy, the built module and `.venv` with the SDKs: `./build.sh test` provides all three.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::time::Duration;

use serde_json::{json, Value};
use tollgate_harness::envoy::Envoy;
use tollgate_harness::mock_llm::{echo_text, embedding, MockLlm, ProviderKind, TOOL_ARGUMENTS};
use tollgate_harness::python;
use tollgate_harness::upstream::{EchoUpstream, ReceivedRequest};

const CLUSTER_HEADER: &str = "x-tollgate-cluster";

/// One configured provider: the model clients ask for, where its requests must land and how they look there.
struct Provider {
    name: &'static str,
    kind: ProviderKind,
    key: &'static str,
    model: &'static str,
    chat_path: &'static str,
    stream_path: &'static str,
    credential: (&'static str, &'static str),
}

const PROVIDERS: [Provider; 5] = [
    Provider {
        name: "openai",
        kind: ProviderKind::OpenAi,
        key: "openai-key",
        model: "gpt-4o",
        chat_path: "/v1/chat/completions",
        stream_path: "/v1/chat/completions",
        credential: ("authorization", "Bearer openai-key"),
    },
    Provider {
        name: "claude",
        kind: ProviderKind::Anthropic,
        key: "anthropic-key",
        model: "claude-sonnet-4-5",
        chat_path: "/v1/messages",
        stream_path: "/v1/messages",
        credential: ("x-api-key", "anthropic-key"),
    },
    Provider {
        name: "gemini",
        kind: ProviderKind::Gemini,
        key: "gemini-key",
        model: "gemini-2.5-flash",
        chat_path: "/v1beta/models/gemini-2.5-flash:generateContent",
        stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        credential: ("x-goog-api-key", "gemini-key"),
    },
    Provider {
        name: "azure",
        kind: ProviderKind::Azure,
        key: "azure-key",
        model: "azure-gpt-4o",
        chat_path: "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21",
        stream_path: "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21",
        credential: ("api-key", "azure-key"),
    },
    Provider {
        name: "mistral",
        kind: ProviderKind::Mistral,
        key: "mistral-key",
        model: "mistral-large-latest",
        chat_path: "/v1/chat/completions",
        stream_path: "/v1/chat/completions",
        credential: ("authorization", "Bearer mistral-key"),
    },
];

fn ai_config() -> Value {
    json!({"ai": {
        "providers": [
            {"name": "openai", "kind": "openai", "cluster": "mock_openai", "base_url": "https://api.openai.com/v1",
             "api_key": "openai-key"},
            {"name": "claude", "kind": "anthropic", "cluster": "mock_claude", "api_key": "anthropic-key",
             "api_version": "2023-06-01", "default_max_tokens": 1024},
            {"name": "gemini", "kind": "gemini", "cluster": "mock_gemini", "api_key": "gemini-key"},
            {"name": "azure", "kind": "azure", "cluster": "mock_azure",
             "base_url": "https://tollgate-test.openai.azure.com", "api_key": "azure-key", "api_version": "2024-10-21",
             "deployments": {"gpt-4o": "prod-gpt4o", "text-embedding-3-large": "prod-embed"}},
            {"name": "mistral", "kind": "mistral", "cluster": "mock_mistral", "api_key": "mistral-key"}
        ],
        "models": [
            {"name": "gpt-4o", "provider": "openai"},
            {"name": "text-embedding-3-small", "provider": "openai"},
            {"name": "claude-*", "provider": "claude"},
            {"name": "gemini-2.5-flash", "provider": "gemini"},
            {"name": "text-embedding-004", "provider": "gemini"},
            {"name": "azure-gpt-4o", "provider": "azure", "model": "gpt-4o"},
            {"name": "azure-embedding", "provider": "azure", "model": "text-embedding-3-large"},
            {"name": "mistral-large-latest", "provider": "mistral"},
            {"name": "mistral-embed", "provider": "mistral"}
        ],
        "cluster_header": CLUSTER_HEADER
    }})
}

/// The five mocks and an Envoy routing to them by the filter's cluster header.
struct Gateway {
    mocks: Vec<EchoUpstream>,
    envoy: Envoy,
}

impl Gateway {
    fn start() -> Gateway {
        let mocks: Vec<EchoUpstream> =
            PROVIDERS.iter().map(|p| MockLlm::new(p.kind, p.key).start().unwrap()).collect();
        let mut builder = Envoy::builder(ai_config().to_string()).route_by_header(CLUSTER_HEADER);
        for (provider, mock) in PROVIDERS.iter().zip(&mocks) {
            builder = builder.cluster(&format!("mock_{}", provider.name), mock.addr());
        }
        let envoy = builder.start().unwrap();
        // The SDK sends it, so the launcher's secrets audit must be told.
        envoy.secret("client-key");
        Gateway { mocks, envoy }
    }

    /// Runs the `openai` SDK client script against Envoy, as `client-key`.
    fn sdk(&self, args: &[&str]) -> Value {
        let base = format!("{}/v1", self.envoy.base_url());
        let mut all = vec![base.as_str()];
        all.extend_from_slice(args);
        python::run_with_env("openai_client.py", &all, &[("CLIENT_API_KEY", "client-key")]).unwrap()
    }

    fn mock(&self, name: &str) -> &EchoUpstream {
        let index = PROVIDERS.iter().position(|p| p.name == name).unwrap();
        &self.mocks[index]
    }

    fn total_received(&self) -> usize {
        self.mocks.iter().map(|m| m.received().len()).sum()
    }
}

/// The one request a mock got since it was last cleared, checked for the provider's key and no client key.
fn only_request(mock: &EchoUpstream, provider: &Provider) -> ReceivedRequest {
    let received = mock.received();
    assert_eq!(received.len(), 1, "{}: {received:#?}", provider.name);
    let request = received.into_iter().next().unwrap();
    let (header, value) = provider.credential;
    assert_eq!(request.header(header), Some(value), "{}: {request:?}", provider.name);
    assert!(
        request.headers.iter().all(|(_, v)| !v.contains("client-key")),
        "{}: the client's key reached the provider: {:?}",
        provider.name,
        request.headers
    );
    mock.clear();
    request
}

#[test]
fn chat_reaches_every_provider_and_comes_back_in_openai_shape() {
    let gateway = Gateway::start();
    for provider in &PROVIDERS {
        let result = gateway.sdk(&["chat", provider.model, "hello there"]);
        let completion = &result["response"];
        assert_eq!(completion["object"], "chat.completion", "{}: {result}", provider.name);
        let choice = &completion["choices"][0];
        assert_eq!(choice["message"]["content"], echo_text("hello there"), "{}: {result}", provider.name);
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["finish_reason"], "stop", "{}", provider.name);
        // "You are terse." and "hello there" in, "echo: hello there" out, counted alike by every mock.
        let usage = &completion["usage"];
        assert_eq!(
            (&usage["prompt_tokens"], &usage["completion_tokens"]),
            (&json!(5), &json!(3)),
            "{}",
            provider.name
        );
        assert_eq!(result["headers"]["x-tollgate-provider"], provider.name, "{result}");
        let request = only_request(gateway.mock(provider.name), provider);
        assert_eq!(request.path, provider.chat_path, "{}", provider.name);
    }
    let claude = PROVIDERS.iter().find(|p| p.name == "claude").unwrap();
    gateway.sdk(&["chat", claude.model, "again"]);
    assert_eq!(only_request(gateway.mock("claude"), claude).header("anthropic-version"), Some("2023-06-01"));

    // Usage as Envoy reports it, per provider, model (the pattern for wildcard routes) and consumer.
    let stat =
        |metric: &str, labels: &str| format!("wasmcustom.tollgate_ai_{metric}.{labels}.consumer.anonymous");
    let wait = std::time::Duration::from_secs(5);
    let openai = "provider.openai.model.gpt-4o";
    assert_eq!(gateway.envoy.wait_for_counter(&stat("requests", openai), 1, wait).unwrap(), 1);
    assert_eq!(gateway.envoy.counter(&stat("input_tokens", openai)).unwrap(), Some(5));
    assert_eq!(gateway.envoy.counter(&stat("output_tokens", openai)).unwrap(), Some(3));
    let claude_labels = "provider.claude.model.claude-_";
    assert_eq!(gateway.envoy.wait_for_counter(&stat("requests", claude_labels), 2, wait).unwrap(), 2);
    assert_eq!(gateway.envoy.counter(&stat("input_tokens", claude_labels)).unwrap(), Some(5 + 4));
}

#[test]
fn streaming_with_tools_assembles_the_call_and_ends_with_usage() {
    let gateway = Gateway::start();
    let arguments: Value = serde_json::from_str(TOOL_ARGUMENTS).unwrap();
    for provider in &PROVIDERS {
        let result = gateway.sdk(&["stream_tools", provider.model, "weather in Paris?"]);
        assert!(result.get("error").is_none(), "{}: {result}", provider.name);
        let calls = result["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{}: {result}", provider.name);
        assert_eq!(calls[0]["name"], "get_weather", "{}: {result}", provider.name);
        let got: Value = serde_json::from_str(calls[0]["arguments"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: arguments are not JSON ({e}): {result}", provider.name));
        assert_eq!(got, arguments, "{}", provider.name);
        assert!(calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()), "{}: {result}", provider.name);
        assert_eq!(result["finish_reason"], "tool_calls", "{}: {result}", provider.name);
        assert_eq!(result["usage"]["prompt_tokens"], 6, "{}: {result}", provider.name);
        assert!(
            result["content_type"].as_str().unwrap_or_default().starts_with("text/event-stream"),
            "{result}"
        );
        let request = only_request(gateway.mock(provider.name), provider);
        assert_eq!(request.path, provider.stream_path, "{}", provider.name);

        let text = gateway.sdk(&["stream", provider.model, "a b c"]);
        assert_eq!(text["content"], echo_text("a b c"), "{}: {text}", provider.name);
        assert_eq!(text["finish_reason"], "stop", "{}: {text}", provider.name);
        assert_eq!(text["usage"]["completion_tokens"], 4, "{}: {text}", provider.name);
        assert!(text["chunks"].as_u64().unwrap() > 3, "{}: streamed in pieces: {text}", provider.name);
        only_request(gateway.mock(provider.name), provider);
    }
}

#[test]
fn embeddings_reach_the_providers_that_have_them() {
    let gateway = Gateway::start();
    let cases = [
        ("openai", "text-embedding-3-small", "/v1/embeddings"),
        ("gemini", "text-embedding-004", "/v1beta/models/text-embedding-004:batchEmbedContents"),
        ("azure", "azure-embedding", "/openai/deployments/prod-embed/embeddings?api-version=2024-10-21"),
        ("mistral", "mistral-embed", "/v1/embeddings"),
    ];
    let inputs = ["first text", "second"];
    let expected: Vec<Vec<f64>> =
        inputs.iter().map(|t| embedding(t).into_iter().map(f64::from).collect()).collect();
    for (name, model, path) in cases {
        let provider = PROVIDERS.iter().find(|p| p.name == name).unwrap();
        // The SDK asks for base64 unless told otherwise, and decodes it itself.
        for format in [None, Some("--float")] {
            let mut args = vec!["embeddings", model];
            args.extend(format);
            args.extend(inputs);
            let result = gateway.sdk(&args);
            assert_eq!(result["vectors"], json!(expected), "{name} {format:?}: {result}");
            assert_eq!(result["response"]["object"], "list", "{name}: {result}");
            let request = only_request(gateway.mock(name), provider);
            assert_eq!(request.path, path, "{name}");
        }
    }
}

#[test]
fn models_list_unknown_models_and_provider_failures() {
    let gateway = Gateway::start();
    let listed = gateway.sdk(&["models", "-"]);
    let ids: Vec<&str> = listed["ids"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for model in ["gpt-4o", "gemini-2.5-flash", "azure-gpt-4o", "mistral-large-latest", "text-embedding-004"]
    {
        assert!(ids.contains(&model), "{model} missing from {listed}");
    }

    let unknown = gateway.sdk(&["chat", "no-such-model", "hi"]);
    assert_eq!(unknown["error"]["class"], "NotFoundError", "{unknown}");
    assert_eq!(unknown["error"]["status"], 404);
    assert!(unknown["error"]["body"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{unknown}");
    assert_eq!(gateway.total_received(), 0, "an unknown model reached a provider");

    // A provider's own 500, in its own shape, reaches the SDK as an OpenAI-shaped server error.
    for provider in &PROVIDERS {
        let failed = gateway.sdk(&["chat", provider.model, "please mock:status=500"]);
        let error = &failed["error"];
        assert!(error["status"].as_u64().is_some_and(|s| s >= 500), "{}: {failed}", provider.name);
        assert!(
            matches!(error["class"].as_str(), Some("InternalServerError" | "APIStatusError")),
            "{}: {failed}",
            provider.name
        );
        assert!(
            error["body"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: {failed}",
            provider.name
        );
        assert!(error["body"]["type"].is_string(), "{}: not OpenAI-shaped: {failed}", provider.name);
        only_request(gateway.mock(provider.name), provider);
    }
    let limited = gateway.sdk(&["stream", "claude-sonnet-4-5", "mock:status=429"]);
    assert_eq!(limited["error"]["class"], "RateLimitError", "{limited}");
}

/// An HTTP/2 client (gRPC-style) ending its chat request with trailers, over h2c to Envoy: the trailers end
/// the body Tollgate holds, so the request is translated for Anthropic and answered. Before the filter had
/// trailers callbacks, the SDK's default answer to them (continue) let Envoy release the held head and body
/// untouched: untranslated, past the body-time checks (model-scoped keys, token budgets), here to no route (503).
#[test]
fn an_http2_request_ending_in_trailers_is_translated_and_answered() {
    let gateway = Gateway::start();
    let body =
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "with trailers"}]});
    let body = body.to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let addr = gateway.envoy.listener_addr();
    let exchange =
        async { tokio::time::timeout(Duration::from_secs(10), h2_post_with_trailers(addr, &body)).await };
    let (status, answer) = runtime.block_on(exchange).expect("an answer within 10 s").unwrap();
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    assert_eq!(answer["choices"][0]["message"]["content"], echo_text("with trailers"), "{answer}");
    let claude = PROVIDERS.iter().find(|p| p.name == "claude").unwrap();
    assert_eq!(only_request(gateway.mock("claude"), claude).path, claude.chat_path);
}

/// POSTs `body` to `/v1/chat/completions` over HTTP/2 with prior knowledge, then a trailers frame; returns the
/// status and the body received.
async fn h2_post_with_trailers(addr: std::net::SocketAddr, body: &str) -> anyhow::Result<(u16, String)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (client, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(connection);
    let mut client = client.ready().await?;
    let request = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(())?;
    let (response, mut send) = client.send_request(request, false)?;
    send.send_data(bytes::Bytes::copy_from_slice(body.as_bytes()), false)?;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-checksum", http::HeaderValue::from_static("1"));
    send.send_trailers(trailers)?;
    let response = response.await?;
    let status = response.status().as_u16();
    let mut received = response.into_body();
    let mut answer = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk?;
        received.flow_control().release_capacity(chunk.len())?;
        answer.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&answer).into_owned()))
}

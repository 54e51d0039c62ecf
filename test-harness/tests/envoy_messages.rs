//! End to end: the official `anthropic` Python SDK (from PyPI, unmodified) talks to a real Envoy
//! (`--concurrency 2`) running `dist/tollgate.wasm` on `/v1/messages`, and Tollgate serves it from an
//! OpenAI-format mock, a Gemini-format mock and an Anthropic-format mock. A streamed, tool-using
//! conversation (the model calls a tool, the client sends the result back, the model answers) must come
//! out of the SDK whole; the mocks must receive their own formats, with the provider's key and never the
//! client's. Needs Envoy, the built module and `.venv` with the SDKs: `./build.sh test` provides all three.

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
use tollgate_harness::mock_llm::{echo_text, MockLlm, ProviderKind, TOOL_ARGUMENTS};
use tollgate_harness::python;
use tollgate_harness::upstream::{EchoUpstream, ReceivedRequest};

const CLUSTER_HEADER: &str = "x-tollgate-cluster";
const CLIENT_KEY: &str = "client-key";

/// A configured provider: the model an Anthropic client asks for, and what its mock must receive.
struct Provider {
    name: &'static str,
    kind: ProviderKind,
    key: &'static str,
    model: &'static str,
    stream_path: &'static str,
    credential: (&'static str, &'static str),
}

const PROVIDERS: [Provider; 3] = [
    Provider {
        name: "openai",
        kind: ProviderKind::OpenAi,
        key: "openai-key",
        model: "gpt-4o",
        stream_path: "/v1/chat/completions",
        credential: ("authorization", "Bearer openai-key"),
    },
    Provider {
        name: "gemini",
        kind: ProviderKind::Gemini,
        key: "gemini-key",
        model: "gemini-2.5-flash",
        stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        credential: ("x-goog-api-key", "gemini-key"),
    },
    Provider {
        name: "claude",
        kind: ProviderKind::Anthropic,
        key: "anthropic-key",
        model: "claude-sonnet-4-5",
        stream_path: "/v1/messages",
        credential: ("x-api-key", "anthropic-key"),
    },
];

struct Gateway {
    mocks: Vec<EchoUpstream>,
    envoy: Envoy,
}

impl Gateway {
    fn start() -> Gateway {
        let config = json!({"ai": {
            "providers": [
                {"name": "openai", "kind": "openai", "cluster": "mock_openai", "api_key": "openai-key"},
                {"name": "gemini", "kind": "gemini", "cluster": "mock_gemini", "api_key": "gemini-key"},
                {"name": "claude", "kind": "anthropic", "cluster": "mock_claude", "api_key": "anthropic-key"}
            ],
            "models": [
                {"name": "gpt-4o", "provider": "openai"},
                {"name": "gemini-2.5-flash", "provider": "gemini"},
                {"name": "claude-*", "provider": "claude"}
            ],
            "cluster_header": CLUSTER_HEADER
        }});
        let mocks: Vec<EchoUpstream> =
            PROVIDERS.iter().map(|p| MockLlm::new(p.kind, p.key).start().unwrap()).collect();
        let mut builder = Envoy::builder(config.to_string()).route_by_header(CLUSTER_HEADER);
        for (provider, mock) in PROVIDERS.iter().zip(&mocks) {
            builder = builder.cluster(&format!("mock_{}", provider.name), mock.addr());
        }
        let envoy = builder.start().unwrap();
        envoy.secret(CLIENT_KEY);
        Gateway { mocks, envoy }
    }

    /// Runs the `anthropic` SDK client script against Envoy, as `client-key`.
    fn sdk(&self, args: &[&str]) -> Value {
        let base = self.envoy.base_url();
        let mut all = vec![base.as_str()];
        all.extend_from_slice(args);
        python::run_with_env("anthropic_client.py", &all, &[("ANTHROPIC_TEST_KEY", CLIENT_KEY)]).unwrap()
    }

    fn mock(&self, name: &str) -> &EchoUpstream {
        &self.mocks[PROVIDERS.iter().position(|p| p.name == name).unwrap()]
    }
}

/// What a mock received since it was last cleared, each request checked for the provider's key and no
/// trace of the client's.
fn received(mock: &EchoUpstream, provider: &Provider) -> Vec<ReceivedRequest> {
    let requests = mock.received();
    for request in &requests {
        let (header, value) = provider.credential;
        assert_eq!(request.header(header), Some(value), "{}: {request:?}", provider.name);
        assert!(
            request.headers.iter().all(|(_, v)| !v.contains(CLIENT_KEY)),
            "{}: the client's key reached the provider: {:?}",
            provider.name,
            request.headers
        );
    }
    mock.clear();
    requests
}

#[test]
fn the_anthropic_sdk_streams_a_tool_conversation_through_openai_gemini_and_anthropic() {
    let gateway = Gateway::start();
    let arguments: Value = serde_json::from_str(TOOL_ARGUMENTS).unwrap();
    for provider in &PROVIDERS {
        let name = provider.name;
        let result = gateway.sdk(&["conversation", provider.model, "weather in Paris?"]);
        assert!(result.get("error").is_none(), "{name}: {result}");
        let turns = result["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 2, "{name}: a tool call, then an answer: {result}");

        // Turn one: the model calls the tool; the SDK assembled the call's input from the streamed JSON.
        let first = &turns[0]["message"];
        assert_eq!(first["stop_reason"], "tool_use", "{name}: {result}");
        let calls: Vec<&Value> =
            first["content"].as_array().unwrap().iter().filter(|b| b["type"] == "tool_use").collect();
        assert_eq!(calls.len(), 1, "{name}: {result}");
        assert_eq!(calls[0]["name"], "get_weather", "{name}");
        assert_eq!(calls[0]["input"], arguments, "{name}: {result}");
        let call_id = calls[0]["id"].as_str().unwrap();
        assert!(!call_id.is_empty(), "{name}");
        let kinds = &turns[0]["event_types"];
        for kind in
            ["message_start", "content_block_start", "input_json", "content_block_stop", "message_stop"]
        {
            assert!(kinds.as_array().unwrap().contains(&json!(kind)), "{name}: no {kind} event: {kinds}");
        }

        // Turn two: the tool result goes back and the model answers from it.
        let second = &turns[1]["message"];
        assert_eq!(second["stop_reason"], "end_turn", "{name}: {result}");
        assert_eq!(second["content"][0]["type"], "text", "{name}: {result}");
        // The mocks echo the tool result as their format carries it (Gemini's is a functionResponse object).
        let answer = second["content"][0]["text"].as_str().unwrap();
        assert!(answer.starts_with("echo: ") && answer.contains("sunny and 21 degrees"), "{name}: {result}");
        if provider.kind != ProviderKind::Gemini {
            assert_eq!(answer, echo_text("sunny and 21 degrees"), "{name}");
        }
        assert!(second["usage"]["output_tokens"].as_u64().unwrap() > 0, "{name}: {result}");
        assert!(second["usage"]["input_tokens"].as_u64().unwrap() > 0, "{name}: {result}");
        assert_eq!(second["model"].as_str().map(str::is_empty), Some(false), "{name}");

        // The provider saw its own format both times, the second time with the call and its result.
        let requests = received(gateway.mock(name), provider);
        assert_eq!(requests.len(), 2, "{name}: {requests:#?}");
        assert!(requests.iter().all(|r| r.path == provider.stream_path), "{name}: {requests:#?}");
        let history: Value = serde_json::from_slice(&requests[1].body).unwrap();
        match provider.kind {
            ProviderKind::OpenAi => {
                let messages = history["messages"].as_array().unwrap();
                let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
                assert_eq!(tool["tool_call_id"], call_id, "{name}: {history}");
                assert_eq!(tool["content"], "sunny and 21 degrees");
                let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
                assert_eq!(assistant["tool_calls"][0]["id"], call_id, "{name}: {history}");
            }
            ProviderKind::Gemini => {
                let text = history.to_string();
                assert!(
                    text.contains("functionResponse") && text.contains("sunny and 21 degrees"),
                    "{history}"
                );
            }
            _ => {
                // Anthropic gets the client's own blocks back as they were.
                let last = &history["messages"][2]["content"][0];
                assert_eq!(last["type"], "tool_result", "{name}: {history}");
                assert_eq!(last["tool_use_id"], call_id, "{name}: {history}");
            }
        }
    }
}

#[test]
fn answers_counts_and_errors_reach_the_sdk_in_anthropics_shape() {
    let gateway = Gateway::start();
    for provider in &PROVIDERS {
        let name = provider.name;
        let created = gateway.sdk(&["create", provider.model, "hello there"]);
        let message = &created["message"];
        assert_eq!(message["type"], "message", "{name}: {created}");
        assert_eq!(message["content"][0]["text"], echo_text("hello there"), "{name}: {created}");
        assert_eq!(message["stop_reason"], "end_turn", "{name}: {created}");
        // "You are terse." and "hello there" in, "echo: hello there" out, counted alike by every mock.
        assert_eq!(
            (&message["usage"]["input_tokens"], &message["usage"]["output_tokens"]),
            (&json!(5), &json!(3))
        );

        let error = gateway.sdk(&["create", provider.model, "mock:status=429"]);
        assert_eq!(error["error"]["class"], "RateLimitError", "{name}: {error}");
        assert_eq!(error["error"]["body"]["type"], "error", "{name}: {error}");
        assert_eq!(error["error"]["body"]["error"]["type"], "rate_limit_error", "{name}: {error}");
        assert_eq!(received(gateway.mock(name), provider).len(), 2, "{name}");
    }

    // count_tokens: estimated by Tollgate where the provider cannot count, never sent upstream.
    let counted = gateway.sdk(&["count", "gpt-4o", "count these words please", "--tools"]);
    assert!(counted["input_tokens"].as_u64().unwrap() > 5, "{counted}");
    assert!(gateway.mock("openai").received().is_empty(), "count_tokens went to OpenAI");

    let unknown = gateway.sdk(&["create", "gpt-9", "hi"]);
    assert_eq!(unknown["error"]["class"], "NotFoundError", "{unknown}");
    assert_eq!(unknown["error"]["body"]["error"]["type"], "not_found_error", "{unknown}");

    // Usage as Envoy reports it for Anthropic-format clients too.
    let stat = "wasmcustom.tollgate_ai_output_tokens.provider.openai.model.gpt-4o.consumer.anonymous";
    assert_eq!(gateway.envoy.wait_for_counter(stat, 3, Duration::from_secs(5)).unwrap(), 3);
}

//! The mock providers checked by the providers' own official SDKs (Python, from PyPI, unmodified): the
//! `anthropic` SDK against the Anthropic mock and the `openai` SDK against the OpenAI mock, directly, with no
//! Tollgate in between. What the SDKs parse is asserted, so the mocks' wire formats (JSON, SSE events, errors)
//! rest on the SDKs' reading of them rather than on our own. Needs `.venv` (`./build.sh test` makes it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use serde_json::{json, Value};
use tollgate_harness::mock_llm::{echo_text, embedding, MockLlm, ProviderKind, TOOL_ARGUMENTS};
use tollgate_harness::python;
use tollgate_harness::upstream::EchoUpstream;

const KEY: &str = "test-provider-key";
const CLAUDE: &str = "claude-sonnet-4-5";

fn anthropic(mock: &EchoUpstream, command: &str, text: &str, tools: bool) -> Value {
    let mut args = vec![mock.url(), command.to_owned(), CLAUDE.to_owned(), text.to_owned()];
    if tools {
        args.push("--tools".to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python::run("anthropic_client.py", &args).unwrap()
}

fn openai(mock: &EchoUpstream, args: &[&str]) -> Value {
    let base = format!("{}/v1", mock.url());
    let mut all = vec![base.as_str()];
    all.extend_from_slice(args);
    python::run_with_env("openai_client.py", &all, &[("CLIENT_API_KEY", KEY)]).unwrap()
}

fn tool_input() -> Value {
    serde_json::from_str(TOOL_ARGUMENTS).unwrap()
}

#[test]
fn the_anthropic_sdk_reads_the_mocks_messages_and_tool_use() {
    let mock = MockLlm::new(ProviderKind::Anthropic, KEY).start().unwrap();

    let plain = anthropic(&mock, "create", "hello there", false);
    let message = &plain["message"];
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": echo_text("hello there"), "citations": null}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["model"], CLAUDE);
    // "You are terse." + "hello there" in, "echo: hello there" out.
    assert_eq!(message["usage"]["input_tokens"], 5);
    assert_eq!(message["usage"]["output_tokens"], 3);

    let tools = anthropic(&mock, "create", "weather in Paris?", true);
    let content = tools["message"]["content"].as_array().unwrap();
    let call = content.iter().find(|block| block["type"] == "tool_use").expect("a tool_use block");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], tool_input());
    assert_eq!(tools["message"]["stop_reason"], "tool_use");

    let seen = mock.received();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.path, "/v1/messages");
        // anthropic 2.x sends the key as a bearer token; the API (and the mock) take either header.
        let bearer = format!("Bearer {KEY}");
        assert!(
            request.header("x-api-key") == Some(KEY) || request.header("authorization") == Some(&bearer),
            "{request:?}"
        );
        assert!(request.header("anthropic-version").is_some());
    }
}

#[test]
fn the_anthropic_sdk_assembles_the_mocks_stream() {
    let mock = MockLlm::new(ProviderKind::Anthropic, KEY).start().unwrap();

    let streamed = anthropic(&mock, "stream", "one two three", true);
    let message = &streamed["message"];
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["content"][0]["text"], "Calling get_weather.");
    assert_eq!(message["content"][1]["type"], "tool_use");
    assert_eq!(message["content"][1]["name"], "get_weather");
    assert_eq!(message["content"][1]["input"], tool_input());
    assert_eq!(message["usage"]["output_tokens"], 1, "the arguments, one word");
    assert!(streamed["tool_json"].as_array().unwrap().len() > 1, "arguments arrive in pieces: {streamed}");
    let types: Vec<&str> =
        streamed["event_types"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(types.first(), Some(&"message_start"));
    assert_eq!(types.last(), Some(&"message_stop"));
    assert!(types.contains(&"content_block_delta") && types.contains(&"message_delta"), "{types:?}");

    let text = anthropic(&mock, "stream", "one two three", false);
    assert_eq!(text["texts"].as_array().unwrap().len(), 4, "one text event per word: {text}");
    assert_eq!(text["message"]["content"][0]["text"], echo_text("one two three"));
    assert_eq!(text["message"]["stop_reason"], "end_turn");
}

#[test]
fn the_anthropic_sdk_classifies_the_mocks_errors() {
    let mock = MockLlm::new(ProviderKind::Anthropic, "another-key").start().unwrap();
    let refused = anthropic(&mock, "create", "hi", false);
    assert_eq!(refused["error"]["class"], "AuthenticationError", "{refused}");
    assert_eq!(refused["error"]["status"], 401);
    assert_eq!(refused["error"]["body"]["error"]["type"], "authentication_error");

    let mock = MockLlm::new(ProviderKind::Anthropic, KEY).start().unwrap();
    let failed = anthropic(&mock, "create", "please mock:status=529", false);
    assert_eq!(failed["error"]["status"], 529, "{failed}");
    assert_eq!(failed["error"]["body"]["error"]["type"], "overloaded_error");
    let failed = anthropic(&mock, "create", "mock:status=500", false);
    assert_eq!(failed["error"]["class"], "InternalServerError", "{failed}");
}

#[test]
fn the_openai_sdk_reads_the_mocks_completions_streams_and_embeddings() {
    let mock = MockLlm::new(ProviderKind::OpenAi, KEY).start().unwrap();

    let chat = openai(&mock, &["chat", "gpt-4o", "hello there"]);
    let completion = &chat["response"];
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["choices"][0]["message"]["content"], echo_text("hello there"));
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(completion["usage"]["prompt_tokens"], 5);
    assert_eq!(completion["usage"]["completion_tokens"], 3);

    let tools = openai(&mock, &["chat_tools", "gpt-4o", "weather?"]);
    let call = &tools["response"]["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], TOOL_ARGUMENTS);

    let streamed = openai(&mock, &["stream_tools", "gpt-4o", "weather?"]);
    assert_eq!(
        streamed["tool_calls"],
        json!([{"id": "call_mock0001", "name": "get_weather", "arguments": TOOL_ARGUMENTS}])
    );
    assert_eq!(streamed["finish_reason"], "tool_calls");
    assert_eq!(streamed["usage"]["prompt_tokens"], 4, "You are terse. weather?");
    assert!(streamed["content_type"].as_str().unwrap().starts_with("text/event-stream"));

    let text = openai(&mock, &["stream", "gpt-4o", "a b c"]);
    assert_eq!(text["content"], echo_text("a b c"));
    assert_eq!(text["roles"], json!(["assistant"]));
    assert_eq!(text["usage"]["completion_tokens"], 4, "echo: a b c");

    // The SDK asks for base64 unless told otherwise and decodes it itself; both forms must give one vector.
    let inputs = ["first text", "second"];
    for extra in [None, Some("--float")] {
        let mut args = vec!["embeddings", "text-embedding-3-small"];
        args.extend(extra);
        args.extend(inputs);
        let vectors = openai(&mock, &args)["vectors"].clone();
        let expected: Vec<Vec<f64>> =
            inputs.iter().map(|t| embedding(t).into_iter().map(f64::from).collect()).collect();
        assert_eq!(vectors, json!(expected), "{extra:?}");
    }

    let seen = mock.received();
    assert!(seen.iter().all(|r| r.header("authorization") == Some(&format!("Bearer {KEY}"))));
    assert_eq!(seen.iter().filter(|r| r.path == "/v1/embeddings").count(), 2);
}

#[test]
fn the_openai_sdk_classifies_the_mocks_errors() {
    let mock = MockLlm::new(ProviderKind::OpenAi, "another-key").start().unwrap();
    let refused = openai(&mock, &["chat", "gpt-4o", "hi"]);
    assert_eq!(refused["error"]["class"], "AuthenticationError", "{refused}");

    let mock = MockLlm::new(ProviderKind::OpenAi, KEY).start().unwrap();
    let failed = openai(&mock, &["chat", "gpt-4o", "mock:status=500"]);
    assert_eq!(failed["error"]["class"], "InternalServerError", "{failed}");
    assert_eq!(failed["error"]["body"]["type"], "server_error");
    let limited = openai(&mock, &["stream", "gpt-4o", "mock:status=429"]);
    assert_eq!(limited["error"]["class"], "RateLimitError", "{limited}");
}

/// Azure and Mistral speak OpenAI's dialect closely enough for the `openai` SDK to read them (Azure is how the
/// SDK's own AzureOpenAI client talks): the SDK is pointed at the deployment or base path directly.
#[test]
fn the_openai_sdk_reads_the_mistral_dialect() {
    let mock = MockLlm::new(ProviderKind::Mistral, KEY).start().unwrap();
    let streamed = openai(&mock, &["stream_tools", "mistral-large-latest", "weather?"]);
    assert_eq!(streamed["tool_calls"][0]["name"], "get_weather", "{streamed}");
    assert_eq!(streamed["tool_calls"][0]["arguments"], TOOL_ARGUMENTS);
    assert_eq!(streamed["usage"]["total_tokens"], 4 + 1);
    let refused = MockLlm::new(ProviderKind::Mistral, "other").start().unwrap();
    assert_eq!(openai(&refused, &["chat", "mistral-small", "hi"])["error"]["status"], 401);
}

use serde_json::{json, Value};

use super::*;

fn post(path: &str, headers: &[(&str, &str)], body: &Value) -> ReceivedRequest {
    ReceivedRequest {
        method: "POST".into(),
        path: path.into(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_string().into_bytes(),
    }
}

fn fixed(reply: Reply) -> (u16, Value) {
    match reply {
        Reply::Fixed { status, body, .. } => (status, serde_json::from_slice(&body).unwrap()),
        other => panic!("expected a fixed reply, got {other:?}"),
    }
}

/// Every `data:` payload of a streamed reply, parsed.
fn events(reply: Reply) -> Vec<String> {
    match reply {
        Reply::Stream { chunks, .. } => {
            chunks.into_iter().map(|c| String::from_utf8(c.data).unwrap()).collect()
        }
        other => panic!("expected a stream, got {other:?}"),
    }
}

#[test]
fn openai_echoes_the_last_user_text_and_counts_words() {
    let mock = MockLlm::new(ProviderKind::OpenAi, "k");
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]}]});
    let (status, reply) =
        fixed(mock.answer(&post("/v1/chat/completions", &[("authorization", "Bearer k")], &body)));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "echo: hello there");
    assert_eq!(reply["usage"]["prompt_tokens"], 4);
    assert_eq!(reply["usage"]["completion_tokens"], 3);
}

#[test]
fn each_provider_refuses_a_wrong_key_in_its_own_shape() {
    let chat = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
                      "contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let cases = [
        (ProviderKind::OpenAi, "/v1/chat/completions", 401, "/error/message"),
        (
            ProviderKind::Azure,
            "/openai/deployments/d/chat/completions?api-version=2024-10-21",
            401,
            "/error/code",
        ),
        (ProviderKind::Mistral, "/v1/chat/completions", 401, "/message"),
        (ProviderKind::Anthropic, "/v1/messages", 401, "/error/type"),
        (ProviderKind::Gemini, "/v1beta/models/gemini-2.0-flash:generateContent", 400, "/error/status"),
    ];
    for (kind, path, expected, pointer) in cases {
        let headers = [
            ("authorization", "Bearer nope"),
            ("x-api-key", "nope"),
            ("api-key", "nope"),
            ("x-goog-api-key", "nope"),
            ("anthropic-version", "2023-06-01"),
        ];
        let (status, body) = fixed(MockLlm::new(kind, "k").answer(&post(path, &headers, &chat)));
        assert_eq!(status, expected, "{kind:?}: {body}");
        assert!(body.pointer(pointer).is_some(), "{kind:?}: {body}");
    }
}

#[test]
fn anthropic_requires_max_tokens_and_version_and_rejects_system_turns() {
    let mock = MockLlm::new(ProviderKind::Anthropic, "k");
    let ok = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
    let no_max = json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = fixed(mock.answer(&post("/v1/messages", &ok, &no_max)));
    assert_eq!((status, body["error"]["message"].as_str()), (400, Some("max_tokens: Field required")));
    let system =
        json!({"model": "claude", "max_tokens": 9, "messages": [{"role": "system", "content": "x"}]});
    assert_eq!(fixed(mock.answer(&post("/v1/messages", &ok, &system))).0, 400);
    let fine = json!({"model": "claude", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(fixed(mock.answer(&post("/v1/messages", &ok[..1], &fine))).0, 400);
    assert_eq!(fixed(mock.answer(&post("/v1/messages", &ok, &fine))).1["content"][0]["text"], "echo: hi");
}

#[test]
fn streams_carry_the_tool_call_in_pieces_that_join_to_the_arguments() {
    let mock = MockLlm::new(ProviderKind::Anthropic, "k");
    let body = json!({"model": "claude", "max_tokens": 9, "stream": true,
                      "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                      "messages": [{"role": "user", "content": "weather?"}]});
    let events =
        events(mock.answer(&post("/v1/messages", &[("x-api-key", "k"), ("anthropic-version", "1")], &body)));
    let joined: String = events
        .iter()
        .filter_map(|e| e.split("data: ").nth(1))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .filter_map(|d| d.pointer("/delta/partial_json").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(joined, TOOL_ARGUMENTS);
    assert!(events.first().unwrap().starts_with("event: message_start\n"));
    assert!(events.last().unwrap().starts_with("event: message_stop\n"));
}

#[test]
fn gemini_streams_with_crlf_and_fails_on_request() {
    let mock = MockLlm::new(ProviderKind::Gemini, "k");
    let path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse";
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "a b"}]}]});
    let events = events(mock.answer(&post(path, &[("x-goog-api-key", "k")], &body)));
    assert_eq!(events.len(), 3, "one event per word of \"echo: a b\"");
    assert!(events.iter().all(|e| e.starts_with("data: {") && e.ends_with("}\r\n\r\n")));
    let failing = json!({"contents": [{"parts": [{"text": "please mock:status=503"}]}]});
    let (status, body) = fixed(mock.answer(&post(path, &[("x-goog-api-key", "k")], &failing)));
    assert_eq!((status, body["error"]["status"].as_str()), (503, Some("UNAVAILABLE")));
}

#[test]
fn embeddings_are_exact_in_json_and_base64() {
    let vector = embedding("hello");
    assert_eq!(vector.len(), EMBEDDING_DIMENSIONS);
    assert!(vector.iter().all(|v| (v * 256.0).fract() == 0.0 && *v < 1.0));
    let mock = MockLlm::new(ProviderKind::OpenAi, "k");
    let body = json!({"model": "text-embedding-3-small", "input": ["hello"], "encoding_format": "base64"});
    let (status, reply) =
        fixed(mock.answer(&post("/v1/embeddings", &[("authorization", "Bearer k")], &body)));
    assert_eq!(status, 200, "{reply}");
    let encoded = reply["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
    let decoded: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(decoded, vector);
}

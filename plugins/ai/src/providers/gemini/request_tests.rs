use serde_json::{json, Value};

use super::conformance::{adapter, target};
use super::{GeminiAdapter, UpstreamRequest};
use crate::adapter::{Adapter, ProviderSettings, Target};
use crate::chat::ChatRequest;
use crate::AiError;

fn chat(request: Value) -> Result<UpstreamRequest, AiError> {
    let req: ChatRequest = serde_json::from_value(request).unwrap();
    adapter().chat_request(&req, &target())
}

fn body_of(request: Value) -> (Value, Vec<String>) {
    let upstream = chat(request).unwrap();
    (serde_json::from_slice(&upstream.body).unwrap(), upstream.dropped)
}

fn user(text: &str) -> Value {
    json!({ "role": "user", "content": text })
}

fn param_of(err: AiError) -> Option<String> {
    match err {
        AiError::InvalidRequest { param, .. } => param,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn model_names_that_would_change_the_path_are_refused() {
    for name in ["models/../x", "a?b", "a#b", "a%2Fb", "a b", "a\tb", "", "x:countTokens"] {
        let req: ChatRequest =
            serde_json::from_value(json!({ "model": name, "messages": [user("hi")] })).unwrap();
        let target = Target { upstream_model: name, ..target() };
        let err = adapter().chat_request(&req, &target).unwrap_err();
        assert_eq!(err.status(), 400, "{name:?}");
        assert_eq!(param_of(err).as_deref(), Some("model"), "{name:?}");
    }
}

#[test]
fn base_path_prefixes_the_path_and_the_key_never_enters_it() {
    let adapter = GeminiAdapter::new(ProviderSettings {
        base_path: "/gemini-proxy".into(),
        api_key: Some("secret".into()),
        ..ProviderSettings::default()
    });
    let req: ChatRequest = serde_json::from_value(json!({ "model": "m", "messages": [user("hi")] })).unwrap();
    let upstream = adapter.chat_request(&req, &target()).unwrap();
    assert_eq!(upstream.path, "/gemini-proxy/v1beta/models/gemini-2.5-flash:generateContent");
    assert!(!upstream.path.contains("secret"));
    assert!(upstream.headers.contains(&("x-goog-api-key".into(), "secret".into())));
}

#[test]
fn no_key_configured_sends_no_key_header() {
    let adapter = GeminiAdapter::new(ProviderSettings::default());
    let req: ChatRequest = serde_json::from_value(json!({ "model": "m", "messages": [user("hi")] })).unwrap();
    let upstream = adapter.chat_request(&req, &target()).unwrap();
    assert!(!upstream.headers.iter().any(|(n, _)| n == "x-goog-api-key"));
    assert!(upstream.headers.contains(&("content-type".into(), "application/json".into())));
}

#[test]
fn streaming_uses_the_sse_endpoint() {
    let upstream = chat(json!({ "model": "m", "stream": true, "messages": [user("hi")] })).unwrap();
    assert_eq!(upstream.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert!(upstream.dropped.is_empty(), "stream_options is the gateway's business: {:?}", upstream.dropped);
}

#[test]
fn tool_choice_modes() {
    let cases = [
        (json!("auto"), json!({ "mode": "AUTO" })),
        (json!("none"), json!({ "mode": "NONE" })),
        (json!("required"), json!({ "mode": "ANY" })),
        (
            json!({ "type": "function", "function": { "name": "f" } }),
            json!({ "mode": "ANY", "allowedFunctionNames": ["f"] }),
        ),
    ];
    for (choice, expected) in cases {
        let (body, _) = body_of(json!({ "model": "m", "messages": [user("hi")], "tool_choice": choice }));
        assert_eq!(body["toolConfig"]["functionCallingConfig"], expected);
    }
    let err =
        chat(json!({ "model": "m", "messages": [user("hi")], "tool_choice": "sometimes" })).unwrap_err();
    assert_eq!(param_of(err).as_deref(), Some("tool_choice"));
}

fn with_arguments(arguments: &str) -> Value {
    json!({ "model": "m", "messages": [
        user("hi"),
        { "role": "assistant", "tool_calls": [
            { "id": "c1", "type": "function", "function": { "name": "ok", "arguments": "{}" } },
            { "id": "c2", "type": "function", "function": { "name": "f", "arguments": arguments } }
        ] }
    ] })
}

#[test]
fn unreadable_tool_call_arguments_are_a_400_naming_the_field() {
    for bad in ["{not json", "[1,2]", "\"text\""] {
        let err = chat(with_arguments(bad)).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(param_of(err).as_deref(), Some("messages[1].tool_calls[1].function.arguments"), "{bad}");
    }
}

#[test]
fn empty_tool_call_arguments_mean_no_arguments() {
    let (body, _) = body_of(with_arguments(" "));
    assert_eq!(body["contents"][1]["parts"][1], json!({ "functionCall": { "name": "f", "args": {} } }));
}

#[test]
fn tool_results_are_named_after_their_call_or_fall_back() {
    let (body, _) = body_of(json!({ "model": "m", "messages": [
        user("hi"),
        { "role": "assistant", "content": "Calling.", "tool_calls": [
            { "id": "c1", "type": "function", "function": { "name": "lookup", "arguments": "{}" } }
        ] },
        { "role": "tool", "tool_call_id": "c1", "content": "[1, 2]" },
        { "role": "tool", "tool_call_id": "unknown-id", "content": "{\"a\": 1}" },
        { "role": "function", "name": "legacy", "content": "done" }
    ] }));
    let model = &body["contents"][1];
    assert_eq!(model["role"], "model");
    assert_eq!(model["parts"][0], json!({ "text": "Calling." }));
    let parts = body["contents"][2]["parts"].as_array().unwrap();
    assert_eq!(body["contents"][2]["role"], "user");
    assert_eq!(
        parts[0],
        json!({ "functionResponse": { "name": "lookup", "response": { "content": "[1, 2]" } } })
    );
    assert_eq!(parts[1], json!({ "functionResponse": { "name": "unknown-id", "response": { "a": 1 } } }));
    assert_eq!(
        parts[2],
        json!({ "functionResponse": { "name": "legacy", "response": { "content": "done" } } })
    );
}

#[test]
fn a_tool_result_without_an_id_or_name_is_refused() {
    let err = chat(json!({ "model": "m", "messages": [user("hi"), { "role": "tool", "content": "x" }] }))
        .unwrap_err();
    assert_eq!(param_of(err).as_deref(), Some("messages[1].tool_call_id"));
}

#[test]
fn empty_turns_are_skipped_and_the_neighbours_merged() {
    let (body, _) = body_of(json!({ "model": "m", "messages": [
        user("one"), { "role": "assistant", "content": "" }, user("two")
    ] }));
    assert_eq!(
        body["contents"],
        json!([{ "role": "user", "parts": [{ "text": "one" }, { "text": "two" }] }])
    );
}

#[test]
fn a_conversation_of_only_system_messages_is_refused() {
    let err =
        chat(json!({ "model": "m", "messages": [{ "role": "system", "content": "be nice" }] })).unwrap_err();
    assert_eq!(param_of(err).as_deref(), Some("messages"));
}

#[test]
fn images_gemini_cannot_take() {
    let err = chat(json!({ "model": "m", "messages": [{ "role": "user", "content": [
        { "type": "image_url", "image_url": { "url": "data:image/png,rawbytes" } }
    ] }] }))
    .unwrap_err();
    assert_eq!(param_of(err).as_deref(), Some("messages[0].content[0].image_url.url"));

    let (body, dropped) = body_of(json!({ "model": "m", "messages": [{ "role": "user", "content": [
        { "type": "text", "text": "look" },
        { "type": "image_url", "image_url": { "url": "http://insecure.example/a.png" } },
        { "type": "image_url", "image_url": { "url": "HTTPS://example.com/a.GIF#x", "detail": "high" } }
    ] }] }));
    assert_eq!(dropped, ["messages[0].content[1]", "messages[0].content[2].image_url.detail"]);
    assert_eq!(
        body["contents"][0]["parts"][1],
        json!({ "fileData": { "mimeType": "image/gif", "fileUri": "HTTPS://example.com/a.GIF#x" } })
    );
}

#[test]
fn non_text_parts_of_system_and_assistant_messages_are_dropped() {
    let (body, dropped) = body_of(json!({ "model": "m", "messages": [
        { "role": "system", "content": [{ "type": "text", "text": "sys" }, { "type": "image_url", "image_url": { "url": "https://x/y.png" } }] },
        user("hi"),
        { "role": "assistant", "content": [{ "type": "refusal", "refusal": "no" }], "refusal": null, "audio": { "id": "a1" } }
    ] }));
    assert_eq!(dropped, ["messages[0].content[1]", "messages[2].audio", "messages[2].content[0]"]);
    assert_eq!(body["systemInstruction"], json!({ "parts": [{ "text": "sys" }] }));
    assert_eq!(body["contents"].as_array().unwrap().len(), 1);
}

#[test]
fn tools_gemini_cannot_declare_are_dropped() {
    let (body, dropped) = body_of(json!({ "model": "m", "messages": [user("hi")], "tools": [
        { "type": "function", "function": { "name": "f", "strict": true, "parameters": { "type": "object" } } },
        { "type": "custom", "function": { "name": "g" } }
    ] }));
    assert_eq!(dropped, ["tools[0].function.strict", "tools[1]"]);
    assert_eq!(
        body["tools"],
        json!([{ "functionDeclarations": [{ "name": "f", "parameters": { "type": "object" } }] }])
    );
}

#[test]
fn response_formats() {
    let format =
        |f: Value| body_of(json!({ "model": "m", "messages": [user("hi")], "response_format": f })).0;
    assert_eq!(format(json!({ "type": "text" })).get("generationConfig"), None);
    assert_eq!(
        format(json!({ "type": "json_schema", "json_schema": { "name": "x" } }))["generationConfig"],
        json!({ "responseMimeType": "application/json" })
    );
    let err = chat(json!({ "model": "m", "messages": [user("hi")], "response_format": { "type": "yaml" } }));
    assert_eq!(param_of(err.unwrap_err()).as_deref(), Some("response_format.type"));
}

#[test]
fn generation_config_details() {
    let (body, dropped) = body_of(json!({ "model": "m", "messages": [user("hi")],
        "stop": "###", "max_tokens": 10, "presence_penalty": null }));
    assert_eq!(body["generationConfig"], json!({ "stopSequences": ["###"], "maxOutputTokens": 10 }));
    assert!(dropped.is_empty());
    let (body, _) = body_of(json!({ "model": "m", "messages": [user("hi")], "stop": [] }));
    assert_eq!(body.get("generationConfig"), None);
    let err =
        chat(json!({ "model": "m", "messages": [user("hi")], "frequency_penalty": "high" })).unwrap_err();
    assert_eq!(param_of(err).as_deref(), Some("frequency_penalty"));
}

#[test]
fn media_types_guessed_from_urls() {
    use super::request::mime_from_url;
    assert_eq!(mime_from_url("https://a/b.PNG"), "image/png");
    assert_eq!(mime_from_url("https://a/b.jpeg?x=1.png"), "image/jpeg");
    assert_eq!(mime_from_url("https://a/b.heic#c"), "image/heic");
    assert_eq!(mime_from_url("https://a.example/path"), "image/jpeg");
}

use serde_json::{json, Value};

use super::conformance::{config, CREATED};
use crate::adapter::Target;
use crate::chat::ChatRequest;
use crate::AiError;

fn translate(request: Value) -> Result<(String, Value, Vec<String>), AiError> {
    let config = config();
    let provider = &config.providers[0];
    let adapter = provider.kind.adapter(provider.settings.clone());
    let request: ChatRequest = serde_json::from_value(request).unwrap();
    let target = Target {
        upstream_model: "amazon.nova-lite-v1:0",
        client_model: "m",
        created: CREATED,
        request_id: "r",
    };
    let upstream = adapter.chat_request(&request, &target)?;
    Ok((upstream.path, serde_json::from_slice(&upstream.body).unwrap(), upstream.dropped))
}

fn with(extra: Value) -> Value {
    let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    request
}

#[test]
fn tool_choices_map_onto_converse() {
    let choice = |c: Value| {
        translate(with(json!({"tool_choice": c}))).unwrap().1["toolConfig"].get("toolChoice").cloned()
    };
    assert_eq!(choice(json!("auto")), Some(json!({"auto": {}})));
    assert_eq!(choice(json!("required")), Some(json!({"any": {}})));
    assert_eq!(
        choice(json!({"type": "function", "function": {"name": "f"}})),
        Some(json!({"tool": {"name": "f"}}))
    );
    // none without tool blocks: the tools are withheld, which honours it.
    let (_, body, dropped) = translate(with(json!({"tool_choice": "none"}))).unwrap();
    assert_eq!((body.get("toolConfig"), dropped), (None, vec![]));
    let err = translate(with(json!({"tool_choice": "sometimes"}))).unwrap_err();
    assert_eq!(err.to_openai_json()["error"]["param"], "tool_choice");
}

#[test]
fn tools_bedrock_cannot_take_are_dropped() {
    let request = with(json!({"tools": [{"type": "code_interpreter", "function": {"name": "x"}},
                                        {"type": "function", "function": {"name": "g", "strict": true}}]}));
    let (_, body, dropped) = translate(request).unwrap();
    assert_eq!(dropped, ["tools[0]", "tools[1].function.strict"]);
    assert_eq!(
        body["toolConfig"]["tools"],
        json!([{"toolSpec": {"name": "g", "inputSchema": {"json": {"type": "object", "properties": {}}}}}])
    );
}

#[test]
fn malformed_requests_are_refused_naming_the_field() {
    let param = |request: Value| translate(request).unwrap_err().to_openai_json()["error"]["param"].clone();
    assert_eq!(param(json!({"model": "m", "messages": [{"role": "system", "content": "only"}]})), "messages");
    assert_eq!(
        param(json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]})),
        "messages[0].tool_calls[0].function.arguments"
    );
    assert_eq!(
        param(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})),
        "messages[0].tool_call_id"
    );
    let image = |url: &str| json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]});
    assert_eq!(param(image("data:image/bmp;base64,Qk0=")), "messages[0].content[0].image_url.url");
    assert_eq!(param(image("data:image/png,raw")), "messages[0].content[0].image_url.url");
}

#[test]
fn model_ids_become_one_path_segment() {
    let config = config();
    let provider = &config.providers[0];
    let adapter = provider.kind.adapter(provider.settings.clone());
    let request: ChatRequest =
        serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
            .unwrap();
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";
    let target = Target { upstream_model: arn, client_model: "m", created: CREATED, request_id: "r" };
    assert_eq!(
        adapter.chat_request(&request, &target).unwrap().path,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    let target = Target { upstream_model: "", ..target };
    assert!(adapter.chat_request(&request, &target).is_err());
}

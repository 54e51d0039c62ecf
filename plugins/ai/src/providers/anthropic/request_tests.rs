use serde_json::{json, Value};

use super::testing::{adapter, body, body_for, chat, target, translate};
use super::{AnthropicAdapter, JSON_TOOL};
use crate::adapter::{Adapter, ProviderSettings};
use crate::AiError;

fn weather_tool() -> Value {
    json!({ "type": "function", "function": {
        "name": "get_weather",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } } }
    }})
}

fn with(extra: Value) -> Value {
    let mut request = json!({ "model": "claude-sonnet", "messages": [{ "role": "user", "content": "Hi" }] });
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    body(&translate(request).unwrap())
}

fn param_of(err: AiError) -> Option<String> {
    match err {
        AiError::InvalidRequest { param, .. } => param,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn path_and_headers() {
    let up =
        translate(json!({ "model": "claude-sonnet", "messages": [{ "role": "user", "content": "Hi" }] }))
            .unwrap();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(
        up.headers,
        vec![
            ("x-api-key".to_string(), "test-provider-key".to_string()),
            ("anthropic-version".to_string(), "2023-06-01".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ]
    );
    assert!(up.dropped.is_empty());
}

#[test]
fn base_path_prefix_default_version_and_no_key() {
    let settings = ProviderSettings { base_path: "/anthropic".into(), ..ProviderSettings::default() };
    let req = chat(json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }] }));
    let up = AnthropicAdapter::new(settings).chat_request(&req, &target()).unwrap();
    assert_eq!(up.path, "/anthropic/v1/messages");
    assert!(!up.headers.iter().any(|(h, _)| h == "x-api-key"));
    assert!(up.headers.contains(&("anthropic-version".into(), "2023-06-01".into())));
    // No client limit and no configured default: Anthropic still needs one.
    assert_eq!(body(&up)["max_tokens"], 4096);
}

#[test]
fn upstream_model_replaces_client_model() {
    assert_eq!(with(json!({}))["model"], "claude-sonnet-4-5");
}

#[test]
fn max_tokens_precedence() {
    assert_eq!(with(json!({}))["max_tokens"], 1024);
    assert_eq!(with(json!({ "max_tokens": 7 }))["max_tokens"], 7);
    assert_eq!(with(json!({ "max_tokens": 7, "max_completion_tokens": 9 }))["max_tokens"], 9);
}

#[test]
fn sampling_stop_user_stream() {
    let b =
        with(json!({ "temperature": 0.5, "top_p": 0.25, "stop": ["a", "b"], "user": "u1", "stream": true }));
    assert_eq!(b["temperature"], 0.5);
    assert_eq!(b["top_p"], 0.25);
    assert_eq!(b["stop_sequences"], json!(["a", "b"]));
    assert_eq!(b["metadata"], json!({ "user_id": "u1" }));
    assert_eq!(b["stream"], true);
    let plain = with(json!({ "stop": [], "stream": false }));
    assert!(plain.get("stop_sequences").is_none());
    assert!(plain.get("stream").is_none());
    assert!(plain.get("temperature").is_none());
}

#[test]
fn system_and_developer_hoisted_and_joined() {
    let b = body_for(json!([
        { "role": "system", "content": "One." },
        { "role": "user", "content": "Hi" },
        { "role": "developer", "content": [{ "type": "text", "text": "Two" }, { "type": "text", "text": "." }] },
        { "role": "system", "content": "" },
    ]));
    assert_eq!(b["system"], "One.\n\nTwo.");
    assert_eq!(b["messages"], json!([{ "role": "user", "content": [{ "type": "text", "text": "Hi" }] }]));
}

#[test]
fn system_image_is_dropped() {
    let req = json!({ "model": "m", "messages": [
        { "role": "system", "content": [{ "type": "text", "text": "S" }, { "type": "image_url", "image_url": { "url": "https://x/y.png" } }] },
        { "role": "user", "content": "Hi" },
    ]});
    let up = translate(req).unwrap();
    assert_eq!(body(&up)["system"], "S");
    assert_eq!(up.dropped, vec!["messages[0].content[1]"]);
}

#[test]
fn consecutive_roles_merge_and_empty_messages_vanish() {
    let b = body_for(json!([
        { "role": "user", "content": "a" },
        { "role": "assistant", "content": "" },
        { "role": "user", "content": "b" },
        { "role": "assistant", "content": "c" },
        { "role": "assistant", "content": [{ "type": "text", "text": "d" }] },
    ]));
    assert_eq!(
        b["messages"],
        json!([
            { "role": "user", "content": [{ "type": "text", "text": "a" }, { "type": "text", "text": "b" }] },
            { "role": "assistant", "content": [{ "type": "text", "text": "c" }, { "type": "text", "text": "d" }] },
        ])
    );
}

#[test]
fn no_conversation_is_invalid() {
    let err =
        translate(json!({ "model": "m", "messages": [{ "role": "system", "content": "S" }] })).unwrap_err();
    assert_eq!(param_of(err), Some("messages".into()));
    let err = translate(json!({ "model": "m", "messages": [] })).unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn images_url_and_base64() {
    let b = body_for(json!([{ "role": "user", "content": [
        { "type": "image_url", "image_url": { "url": "https://example.com/a.jpg" } },
        { "type": "image_url", "image_url": { "url": "data:image/webp;base64,AAAA" } },
    ]}]));
    assert_eq!(
        b["messages"][0]["content"],
        json!([
            { "type": "image", "source": { "type": "url", "url": "https://example.com/a.jpg" } },
            { "type": "image", "source": { "type": "base64", "media_type": "image/webp", "data": "AAAA" } },
        ])
    );
}

#[test]
fn unusable_image_url_is_invalid() {
    for url in ["ftp://x/y.png", "data:image/png,notbase64", "file:///etc/passwd", ""] {
        let req = json!({ "model": "m", "messages": [{ "role": "user", "content": [
            { "type": "text", "text": "look" },
            { "type": "image_url", "image_url": { "url": url } },
        ]}]});
        let err = translate(req).unwrap_err();
        assert_eq!(param_of(err), Some("messages[0].content[1].image_url.url".into()), "{url}");
    }
}

#[test]
fn unsupported_parts_dropped_by_path() {
    let req = json!({ "model": "m", "messages": [
        { "role": "user", "content": "a" },
        { "role": "user", "content": [
            { "type": "input_audio", "input_audio": { "data": "x", "format": "wav" } },
            { "type": "text", "text": "b" },
            { "type": "file", "file": { "file_id": "f1" } },
        ]},
    ]});
    let up = translate(req).unwrap();
    assert_eq!(up.dropped, vec!["messages[1].content[0]", "messages[1].content[2]"]);
    assert_eq!(body(&up)["messages"][0]["content"][1], json!({ "type": "text", "text": "b" }));
}

#[test]
fn assistant_tool_calls_become_tool_use() {
    let b = body_for(json!([
        { "role": "user", "content": "go" },
        { "role": "assistant", "content": "Sure.", "tool_calls": [
            { "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "{\"a\":[1,2]}" } },
            { "id": "call_2", "type": "function", "function": { "name": "g", "arguments": "" } },
        ]},
    ]));
    assert_eq!(
        b["messages"][1]["content"],
        json!([
            { "type": "text", "text": "Sure." },
            { "type": "tool_use", "id": "call_1", "name": "f", "input": { "a": [1, 2] } },
            { "type": "tool_use", "id": "call_2", "name": "g", "input": {} },
        ])
    );
}

#[test]
fn bad_tool_arguments_are_invalid_with_path() {
    for args in ["{not json", "[1,2]", "42", "\"text\""] {
        let req = json!({ "model": "m", "messages": [
            { "role": "user", "content": "go" },
            { "role": "assistant", "tool_calls": [
                { "id": "c0", "type": "function", "function": { "name": "f", "arguments": "{}" } },
                { "id": "c1", "type": "function", "function": { "name": "f", "arguments": args } },
            ]},
        ]});
        let err = translate(req).unwrap_err();
        assert_eq!(param_of(err), Some("messages[1].tool_calls[1].function.arguments".into()), "{args}");
    }
}

#[test]
fn tool_results_merge_into_one_user_turn_with_following_text() {
    let b = body_for(json!([
        { "role": "user", "content": "go" },
        { "role": "assistant", "tool_calls": [
            { "id": "c1", "type": "function", "function": { "name": "f", "arguments": "{}" } },
            { "id": "c2", "type": "function", "function": { "name": "f", "arguments": "{}" } },
        ]},
        { "role": "tool", "tool_call_id": "c1", "content": "one" },
        { "role": "tool", "tool_call_id": "c2", "content": [{ "type": "text", "text": "two" }] },
        { "role": "user", "content": "thanks" },
    ]));
    assert_eq!(
        b["messages"][2],
        json!({ "role": "user", "content": [
            { "type": "tool_result", "tool_use_id": "c1", "content": "one" },
            { "type": "tool_result", "tool_use_id": "c2", "content": [{ "type": "text", "text": "two" }] },
            { "type": "text", "text": "thanks" },
        ]})
    );
    assert_eq!(b["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn empty_tool_result_has_no_content() {
    let b = body_for(json!([
        { "role": "user", "content": "go" },
        { "role": "tool", "tool_call_id": "c1", "content": "" },
    ]));
    assert_eq!(b["messages"][0]["content"][1], json!({ "type": "tool_result", "tool_use_id": "c1" }));
}

#[test]
fn tool_message_without_id_is_invalid() {
    let req = json!({ "model": "m", "messages": [{ "role": "user", "content": "go" }, { "role": "tool", "content": "x" }] });
    assert_eq!(param_of(translate(req).unwrap_err()), Some("messages[1].tool_call_id".into()));
}

#[test]
fn tools_translate_with_default_schema() {
    let b = with(json!({ "tools": [
        weather_tool(),
        { "type": "function", "function": { "name": "ping", "description": "no args" } },
    ]}));
    assert_eq!(
        b["tools"],
        json!([
            { "name": "get_weather", "input_schema": { "type": "object", "properties": { "city": { "type": "string" } } } },
            { "name": "ping", "description": "no args", "input_schema": { "type": "object", "properties": {} } },
        ])
    );
    assert!(b.get("tool_choice").is_none());
}

#[test]
fn tool_choice_modes() {
    let cases = [
        (json!("auto"), json!({ "type": "auto" })),
        (json!("required"), json!({ "type": "any" })),
        (json!("none"), json!({ "type": "none" })),
        (
            json!({ "type": "function", "function": { "name": "get_weather" } }),
            json!({ "type": "tool", "name": "get_weather" }),
        ),
    ];
    for (choice, expected) in cases {
        let b = with(json!({ "tools": [weather_tool()], "tool_choice": choice }));
        assert_eq!(b["tool_choice"], expected);
    }
}

#[test]
fn bad_tool_choice_is_invalid() {
    let req = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }], "tools": [weather_tool()], "tool_choice": "sometimes" });
    assert_eq!(param_of(translate(req).unwrap_err()), Some("tool_choice".into()));
}

#[test]
fn tool_choice_without_tools_is_left_out() {
    let b = with(json!({ "tool_choice": "auto" }));
    assert!(b.get("tool_choice").is_none());
    assert!(b.get("tools").is_none());
}

#[test]
fn parallel_tool_calls_false_disables_parallel_use() {
    let b = with(json!({ "tools": [weather_tool()], "parallel_tool_calls": false }));
    assert_eq!(b["tool_choice"], json!({ "type": "auto", "disable_parallel_tool_use": true }));
    let b =
        with(json!({ "tools": [weather_tool()], "tool_choice": "required", "parallel_tool_calls": false }));
    assert_eq!(b["tool_choice"], json!({ "type": "any", "disable_parallel_tool_use": true }));
    let b = with(json!({ "tools": [weather_tool()], "tool_choice": "none", "parallel_tool_calls": false }));
    assert_eq!(b["tool_choice"], json!({ "type": "none" }));
}

#[test]
fn non_function_and_strict_tools_reported() {
    let req = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }], "tools": [
        { "type": "code_interpreter", "function": { "name": "ci" } },
        { "type": "function", "function": { "name": "f", "strict": true } },
    ]});
    let up = translate(req).unwrap();
    assert_eq!(up.dropped, vec!["tools[0]", "tools[1].function.strict"]);
    assert_eq!(body(&up)["tools"].as_array().unwrap().len(), 1);
}

#[test]
fn reserved_tool_name_is_invalid() {
    let req = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }],
        "tools": [{ "type": "function", "function": { "name": JSON_TOOL } }] });
    assert_eq!(param_of(translate(req).unwrap_err()), Some("tools[0].function.name".into()));
}

#[test]
fn json_object_forces_the_answer_tool() {
    let b = with(json!({ "response_format": { "type": "json_object" } }));
    assert_eq!(b["tools"][0]["name"], JSON_TOOL);
    assert_eq!(b["tools"][0]["input_schema"], json!({ "type": "object" }));
    assert_eq!(b["tool_choice"], json!({ "type": "tool", "name": JSON_TOOL }));
    assert!(with(json!({ "response_format": { "type": "text" } })).get("tools").is_none());
}

#[test]
fn json_schema_uses_schema_and_description() {
    let schema = json!({ "type": "object", "properties": { "x": { "type": "number" } } });
    let b = with(json!({ "response_format": { "type": "json_schema",
        "json_schema": { "name": "point", "description": "A point.", "schema": schema } } }));
    assert_eq!(b["tools"][0]["input_schema"], schema);
    assert!(b["tools"][0]["description"].as_str().unwrap().ends_with("The answer: A point."));
}

#[test]
fn json_answer_with_client_tools() {
    let format = json!({ "type": "json_object" });
    // The model may call a client tool or answer in JSON, but must do one of them.
    let b = with(json!({ "tools": [weather_tool()], "response_format": format }));
    assert_eq!(b["tool_choice"], json!({ "type": "any" }));
    assert_eq!(b["tools"][1]["name"], JSON_TOOL);
    // tool_choice none: the client tools stay visible but the answer must be the JSON tool.
    let b = with(json!({ "tools": [weather_tool()], "tool_choice": "none", "response_format": format }));
    assert_eq!(b["tool_choice"], json!({ "type": "tool", "name": JSON_TOOL }));
    // A forced client tool already fixes the answer; the JSON tool is not added.
    let forced = json!({ "type": "function", "function": { "name": "get_weather" } });
    let b = with(json!({ "tools": [weather_tool()], "tool_choice": forced, "response_format": format }));
    assert_eq!(b["tools"].as_array().unwrap().len(), 1);
    assert_eq!(b["tool_choice"], json!({ "type": "tool", "name": "get_weather" }));
}

#[test]
fn bad_response_format_is_invalid() {
    for (format, param) in [
        (json!({ "type": "json_schema" }), "response_format.json_schema"),
        (json!({ "type": "xml" }), "response_format.type"),
    ] {
        let req = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }], "response_format": format });
        assert_eq!(param_of(translate(req).unwrap_err()), Some(param.into()));
    }
}

#[test]
fn dropped_top_level_sorted_and_nulls_ignored() {
    let req = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }],
        "seed": 1, "n": 2, "zeta": true, "logprobs": false, "presence_penalty": null, "parallel_tool_calls": true });
    let up = translate(req).unwrap();
    assert_eq!(up.dropped, vec!["logprobs", "n", "seed", "zeta"]);
    let b = body(&up);
    for name in ["seed", "n", "zeta", "logprobs", "presence_penalty", "parallel_tool_calls"] {
        assert!(b.get(name).is_none(), "{name} sent");
    }
}

#[test]
fn message_name_and_extras_dropped() {
    let req = json!({ "model": "m", "messages": [
        { "role": "user", "name": "bob", "content": "Hi" },
        { "role": "assistant", "content": "Yo", "refusal": null, "audio": { "id": "a1" } },
    ]});
    assert_eq!(translate(req).unwrap().dropped, vec!["messages[0].name", "messages[1].audio"]);
}

#[test]
fn body_is_valid_json_for_every_request() {
    let req =
        chat(json!({ "model": "m", "messages": [{ "role": "user", "content": "quote \" and \u{1F600}" }] }));
    let up = adapter().chat_request(&req, &target()).unwrap();
    let b: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(b["messages"][0]["content"][0]["text"], "quote \" and \u{1F600}");
}

/// The body is written from borrowed blocks, not a JSON tree: its bytes must be what writing the same body
/// as a `serde_json::Value` gives (keys sorted at every level), whatever fields are around `messages`.
#[test]
fn the_body_is_written_as_its_json_value_would_be() {
    let request = json!({
        "model": "claude-sonnet", "user": "u-1", "stop": ["END"], "temperature": 0.5, "top_p": 0.9,
        "stream": true, "max_tokens": 100, "tools": [weather_tool()], "tool_choice": "auto",
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": [
                { "type": "text", "text": "Look \"here\"\n" },
                { "type": "image_url", "image_url": { "url": "https://example.com/a.png" } },
                { "type": "text", "text": "" }
            ]},
            { "role": "assistant", "content": "Checking.", "tool_calls": [{ "id": "c1", "type": "function",
              "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } }] },
            { "role": "tool", "tool_call_id": "c1", "content": [{ "type": "text", "text": "sunny" }] },
            { "role": "tool", "tool_call_id": "c2", "content": "rain" },
            { "role": "user", "content": "Thanks \u{e9}" }
        ]
    });
    for request in
        [request.clone(), json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }] })]
    {
        let up = translate(request).unwrap();
        let tree: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(String::from_utf8(up.body).unwrap(), serde_json::to_string(&tree).unwrap());
    }
    let b = body(&translate(request).unwrap());
    assert_eq!(b["messages"][0]["content"][0], json!({ "type": "text", "text": "Look \"here\"\n" }));
    assert_eq!(b["messages"][2]["content"][0]["content"], json!([{ "type": "text", "text": "sunny" }]));
    assert_eq!(b["messages"][2]["content"][1]["content"], json!("rain"));
}

//! Anthropic's Messages API: `POST /v1/messages` with `x-api-key` (or a bearer key) and `anthropic-version`, `max_tokens`
//! required, only `user`/`assistant` turns (the system prompt is a top-level field), JSON responses and the
//! named-event stream (`message_start` ... `message_stop`), errors as `{"type":"error","error":{..}}`.
//! Anthropic has no embeddings endpoint, so anything but `/v1/messages` is a 404.

use serde_json::{json, Map, Value};

use super::{
    argument_pieces, content_text, json_object, split_path, sse_event, Answer, MockLlm, Turn, TOOL_ARGUMENTS,
};
use crate::upstream::{ReceivedRequest, Reply};

const MESSAGE_ID: &str = "msg_mock0001";
const TOOL_USE_ID: &str = "toolu_mock0001";

pub(super) fn answer(mock: &MockLlm, request: &ReceivedRequest) -> Reply {
    let (path, _) = split_path(&request.path);
    if path != "/v1/messages" {
        return error(404, "not_found_error", "Not Found");
    }
    if request.method != "POST" {
        return error(405, "invalid_request_error", "Method Not Allowed");
    }
    // The API takes the key in `x-api-key`, or as a bearer token (how the current Python SDK sends it).
    let bearer = request.header("authorization").and_then(|value| value.strip_prefix("Bearer "));
    match request.header("x-api-key").or(bearer) {
        Some(key) if key == mock.key => {}
        Some(_) => return error(401, "authentication_error", "invalid x-api-key"),
        None => return error(401, "authentication_error", "x-api-key header is required"),
    }
    if request.header("anthropic-version").is_none_or(str::is_empty) {
        return error(400, "invalid_request_error", "anthropic-version: header is required");
    }
    let Some(body) = json_object(request) else {
        return error(400, "invalid_request_error", "The request body is not valid JSON.");
    };
    for field in ["model", "max_tokens", "messages"] {
        if !body.contains_key(field) {
            return error(400, "invalid_request_error", &format!("{field}: Field required"));
        }
    }
    if !body.get("max_tokens").is_some_and(Value::is_u64) {
        return error(400, "invalid_request_error", "max_tokens: Input should be a valid integer");
    }
    let turn = match turn(&body) {
        Ok(turn) => turn,
        Err(message) => return error(400, "invalid_request_error", &message),
    };
    if let Some(status) = turn.requested_failure() {
        return failure(status);
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or_default();
    let answer = turn.answer();
    let (input, output) = (turn.input_tokens(), answer.output_tokens());
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return mock.sse(stream(model, &answer, input, output));
    }
    let content = match &answer {
        Answer::Text(text) => json!([{"type": "text", "text": text}]),
        // Claude usually says a few words before it calls a tool.
        Answer::ToolCall { name } => json!([
            {"type": "text", "text": format!("Calling {name}.")},
            {"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": tool_input()}
        ]),
    };
    Reply::json(
        200,
        &json!({
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(&answer), "stop_sequence": null, "usage": usage(input, output),
        }),
    )
}

fn turn(body: &Map<String, Value>) -> Result<Turn, String> {
    let messages = match body.get("messages").and_then(Value::as_array) {
        Some(messages) if !messages.is_empty() => messages,
        _ => return Err("messages: at least one message is required".to_owned()),
    };
    let mut turn = Turn::default();
    turn.all_text.push(content_text(body.get("system"), "text"));
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if !matches!(role, "user" | "assistant") {
            return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        let content = message.get("content");
        let blocks = content.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let results: Vec<&Value> =
            blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")).collect();
        if role == "user" && !results.is_empty() {
            for result in &results {
                if !result.get("tool_use_id").is_some_and(Value::is_string) {
                    return Err(format!("messages.{i}.content: tool_result.tool_use_id: Field required"));
                }
            }
            turn.after_tool = true;
            turn.last_text =
                results.iter().map(|r| content_text(r.get("content"), "text")).collect::<Vec<_>>().join(" ");
        } else {
            turn.after_tool = false;
            turn.last_text = if role == "user" { content_text(content, "text") } else { String::new() };
        }
        turn.all_text.push(content_text(content, "text"));
    }
    turn.first_tool = body
        .get("tools")
        .and_then(|tools| tools.get(0))
        .and_then(|tool| tool.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(turn)
}

fn stream(model: &str, answer: &Answer, input: u64, output: u64) -> Vec<String> {
    let event = |name: &str, data: Value| sse_event(Some(name), &data, "\n");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": usage(input, 1)}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let text = match answer {
        Answer::Text(text) => text.clone(),
        Answer::ToolCall { name } => format!("Calling {name}."),
    };
    events.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    for piece in Answer::text_pieces(&text) {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    if let Answer::ToolCall { name } = answer {
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": {}}}),
        ));
        for piece in argument_pieces() {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                       "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 1})));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
               "usage": {"output_tokens": output}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

fn tool_input() -> Value {
    serde_json::from_str(TOOL_ARGUMENTS).unwrap_or(Value::Null)
}

fn stop_reason(answer: &Answer) -> &'static str {
    match answer {
        Answer::Text(_) => "end_turn",
        Answer::ToolCall { .. } => "tool_use",
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({"input_tokens": input, "output_tokens": output,
           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

/// A failure asked for with `mock:status=NNN`, typed as Anthropic types its errors.
fn failure(status: u16) -> Reply {
    let (error_type, message) = match status {
        429 => ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        529 => ("overloaded_error", "Overloaded"),
        400..=499 => ("invalid_request_error", "The mock was asked to refuse this request"),
        _ => ("api_error", "Internal server error"),
    };
    error(status, error_type, message)
}

fn error(status: u16, error_type: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "error", "error": {"type": error_type, "message": message},
                                "request_id": "req_mock0001"}),
    )
}

//! OpenAI's wire format, and the dialects of it that Azure OpenAI and Mistral speak: chat completions (JSON and
//! `chat.completion.chunk` SSE ending in `[DONE]`) and embeddings (float or base64).
//!
//! Dialect differences kept on purpose, because translators trip on them: Azure serves deployments at
//! `/openai/deployments/{name}/...?api-version=`, takes `api-key`, opens streams with a chunk that has no
//! choices, and errors with a string `code`; Mistral puts usage in its last chunk without being asked and
//! sends a tool call whole in one chunk.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{
    argument_pieces, content_text, embedding, json_object, query_param, requested_failure, set, split_path,
    sse_event, Answer, MockLlm, ProviderKind, Turn, CREATED, TOOL_ARGUMENTS,
};
use crate::upstream::{ReceivedRequest, Reply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Embeddings,
}

pub(super) fn answer(mock: &MockLlm, request: &ReceivedRequest) -> Reply {
    let kind = mock.kind;
    let endpoint = match route(mock, &request.path) {
        Ok(endpoint) => endpoint,
        Err(reply) => return reply,
    };
    if request.method != "POST" {
        return error(kind, 405, "invalid_request_error", &format!("{} is not allowed here", request.method));
    }
    let authorised = match kind {
        ProviderKind::Azure => request.header("api-key") == Some(mock.key.as_str()),
        _ => request.header("authorization") == Some(format!("Bearer {}", mock.key).as_str()),
    };
    if !authorised {
        return unauthorised(kind);
    }
    let Some(body) = json_object(request) else {
        return error(
            kind,
            400,
            "invalid_request_error",
            "We could not parse the JSON body of your request.",
        );
    };
    // Azure names the model by deployment in the path; the others require it in the body.
    if kind != ProviderKind::Azure && !body.get("model").is_some_and(Value::is_string) {
        return error(kind, 400, "invalid_request_error", "you must provide a model parameter");
    }
    match endpoint {
        Endpoint::Chat => chat(mock, &body),
        Endpoint::Embeddings => embeddings(kind, &body),
    }
}

fn route(mock: &MockLlm, path: &str) -> Result<Endpoint, Reply> {
    let (path, query) = split_path(path);
    let rest = if mock.kind == ProviderKind::Azure {
        let rest = path.strip_prefix("/openai/deployments/").and_then(|r| r.split_once('/'));
        match rest {
            Some((deployment, rest)) if !deployment.is_empty() => {
                if query_param(query, "api-version").is_none_or(str::is_empty) {
                    return Err(error(mock.kind, 404, "404", "Resource not found"));
                }
                Some(rest)
            }
            _ => None,
        }
    } else {
        path.strip_prefix(mock.base_path.as_str()).and_then(|r| r.strip_prefix('/'))
    };
    match rest {
        Some("chat/completions") => Ok(Endpoint::Chat),
        Some("embeddings") => Ok(Endpoint::Embeddings),
        _ => Err(error(mock.kind, 404, "invalid_request_error", &format!("Invalid URL (POST {path})"))),
    }
}

fn turn(body: &Map<String, Value>) -> Result<Turn, String> {
    let messages = match body.get("messages").and_then(Value::as_array) {
        Some(messages) if !messages.is_empty() => messages,
        _ => return Err("'messages' must be a non-empty array".to_owned()),
    };
    let mut turn = Turn::default();
    for message in messages {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
            return Err(format!("Invalid value for 'messages.role': {role:?}"));
        }
        let text = content_text(message.get("content"), "text");
        turn.after_tool = role == "tool";
        turn.last_text = if matches!(role, "user" | "tool") { text.clone() } else { String::new() };
        turn.all_text.push(text);
    }
    turn.first_tool = body
        .get("tools")
        .and_then(|tools| tools.get(0))
        .and_then(|tool| tool.pointer("/function/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(turn)
}

fn chat(mock: &MockLlm, body: &Map<String, Value>) -> Reply {
    let kind = mock.kind;
    let turn = match turn(body) {
        Ok(turn) => turn,
        Err(message) => return error(kind, 400, "invalid_request_error", &message),
    };
    if let Some(status) = turn.requested_failure() {
        return failure(kind, status);
    }
    let model = match kind {
        ProviderKind::Azure => "gpt-4o-2024-08-06",
        _ => body.get("model").and_then(Value::as_str).unwrap_or_default(),
    };
    let answer = turn.answer();
    let usage = usage(kind, turn.input_tokens(), answer.output_tokens());
    let finish = if matches!(answer, Answer::ToolCall { .. }) { "tool_calls" } else { "stop" };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage =
            body.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool)
                == Some(true);
        return mock.sse(stream(kind, model, &answer, finish, usage, include_usage));
    }
    let message = match &answer {
        Answer::Text(text) => json!({"role": "assistant", "content": text, "refusal": null}),
        Answer::ToolCall { name } => json!({
            "role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": call_id(kind), "type": "function",
                            "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]
        }),
    };
    let mut completion = json!({
        "id": "chatcmpl-mock0001", "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    });
    if kind == ProviderKind::OpenAi {
        set(&mut completion, "system_fingerprint", json!("fp_mock"));
    }
    Reply::json(200, &completion)
}

fn stream(
    kind: ProviderKind,
    model: &str,
    answer: &Answer,
    finish: &str,
    usage: Value,
    include_usage: bool,
) -> Vec<String> {
    let chunk = |choices: Value| {
        json!({"id": "chatcmpl-mock0001", "object": "chat.completion.chunk", "created": CREATED,
               "model": model, "choices": choices})
    };
    let delta =
        |delta: Value| chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]));
    let mut chunks = Vec::new();
    if kind == ProviderKind::Azure {
        // Azure's content-filter preamble: a chunk with no choices and an empty model.
        chunks.push(json!({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                           "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}));
    }
    match answer {
        Answer::Text(text) => {
            chunks.push(delta(json!({"role": "assistant", "content": ""})));
            for piece in Answer::text_pieces(text) {
                chunks.push(delta(json!({"content": piece})));
            }
        }
        Answer::ToolCall { name } if kind == ProviderKind::Mistral => {
            chunks.push(delta(json!({"role": "assistant", "content": ""})));
            chunks.push(delta(json!({"tool_calls": [{"index": 0, "id": call_id(kind), "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]})));
        }
        Answer::ToolCall { name } => {
            chunks.push(delta(json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": call_id(kind), "type": "function", "function": {"name": name, "arguments": ""}}]})));
            for piece in argument_pieces() {
                chunks.push(delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})));
            }
        }
    }
    let mut last = chunk(json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}]));
    if kind == ProviderKind::Mistral {
        // Mistral reports usage in its final chunk whether or not it was asked.
        set(&mut last, "usage", usage);
    } else if include_usage {
        chunks.push(last);
        last = chunk(json!([]));
        set(&mut last, "usage", usage);
    }
    chunks.push(last);
    let mut events: Vec<String> = chunks.iter().map(|c| sse_event(None, c, "\n")).collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

fn embeddings(kind: ProviderKind, body: &Map<String, Value>) -> Reply {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                // Token arrays embed as their JSON text: deterministic, and distinct from each other.
                other => other.to_string(),
            })
            .collect(),
        _ => {
            return error(kind, 400, "invalid_request_error", "'input' must be a string or a non-empty array")
        }
    };
    if let Some(status) = inputs.iter().find_map(|text| requested_failure(text)) {
        return failure(kind, status);
    }
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return error(
                kind,
                400,
                "invalid_request_error",
                &format!("unsupported encoding_format {other:?}"),
            )
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = embedding(text);
            let encoded = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": encoded})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|t| super::words(t)).sum();
    let model = body.get("model").and_then(Value::as_str).unwrap_or("text-embedding-3-small");
    Reply::json(
        200,
        &json!({"object": "list", "data": data, "model": model,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

fn usage(kind: ProviderKind, input: u64, output: u64) -> Value {
    let mut usage =
        json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
    if kind != ProviderKind::Mistral {
        set(&mut usage, "prompt_tokens_details", json!({"cached_tokens": 0, "audio_tokens": 0}));
        set(
            &mut usage,
            "completion_tokens_details",
            json!({"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}),
        );
    }
    usage
}

fn call_id(kind: ProviderKind) -> &'static str {
    // Mistral's tool call ids are nine alphanumerics; OpenAI's start with `call_`.
    if kind == ProviderKind::Mistral {
        "D4fLq9xZ1"
    } else {
        "call_mock0001"
    }
}

fn unauthorised(kind: ProviderKind) -> Reply {
    match kind {
        ProviderKind::Azure => Reply::json(401, &json!({"error": {"code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})),
        ProviderKind::Mistral => Reply::json(401, &json!({"message": "Unauthorized", "request_id": "mock-request"})),
        _ => error(kind, 401, "invalid_request_error", "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."),
    }
}

/// A failure asked for with `mock:status=NNN`.
fn failure(kind: ProviderKind, status: u16) -> Reply {
    let (kind_name, message) = match status {
        429 => ("rate_limit_exceeded", "Rate limit reached for requests"),
        400..=499 => ("invalid_request_error", "The mock was asked to refuse this request"),
        _ => ("server_error", "The server had an error while processing your request. Sorry about that!"),
    };
    error(kind, status, kind_name, message)
}

/// The provider's error body: OpenAI's `{"error":{message,type,param,code}}`, Azure's string-coded variant,
/// or Mistral's flat `{"object":"error",...}`.
fn error(kind: ProviderKind, status: u16, error_type: &str, message: &str) -> Reply {
    let body = match kind {
        ProviderKind::Mistral => {
            json!({"object": "error", "message": message, "type": error_type, "param": null, "code": null})
        }
        ProviderKind::Azure if status == 404 || status == 401 => {
            json!({"error": {"code": status.to_string(), "message": message}})
        }
        _ => json!({"error": {"message": message, "type": error_type, "param": null, "code": null}}),
    };
    Reply::json(status, &body)
}

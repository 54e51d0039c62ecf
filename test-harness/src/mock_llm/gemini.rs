//! Google's Gemini API (`generativelanguage`, v1beta): `models/{model}:generateContent`,
//! `:streamGenerateContent` (SSE with `?alt=sse`, else one JSON array), `:embedContent` and
//! `:batchEmbedContents`, the key in `x-goog-api-key` (or `?key=`), turns with roles `user`/`model`, function
//! calls as whole `functionCall` parts, errors in Google's `{"error":{code,message,status}}` shape.
//! Its SSE events end in CRLF pairs, as Google's servers send them.

use serde_json::{json, Map, Value};

use super::{
    content_text, embedding, json_object, query_param, requested_failure, set, split_path, sse_event, Answer,
    MockLlm, Turn, TOOL_ARGUMENTS,
};
use crate::upstream::{ReceivedRequest, Reply};

pub(super) fn answer(mock: &MockLlm, request: &ReceivedRequest) -> Reply {
    let (path, query) = split_path(&request.path);
    let Some((model, method)) = path.strip_prefix("/v1beta/models/").and_then(|rest| rest.split_once(':'))
    else {
        return error(404, "NOT_FOUND", &format!("The requested URL {path} was not found on this server."));
    };
    let key = request.header("x-goog-api-key").or_else(|| query_param(query, "key"));
    match key {
        Some(key) if key == mock.key => {}
        Some(_) => return invalid_key(),
        None => {
            return error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
        }
    }
    if request.method != "POST" {
        return error(405, "INVALID_ARGUMENT", "Method not allowed");
    }
    let Some(body) = json_object(request) else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    match method {
        "generateContent" => generate(mock, model, &body, Framing::Whole),
        "streamGenerateContent" if query_param(query, "alt") == Some("sse") => {
            generate(mock, model, &body, Framing::Sse)
        }
        "streamGenerateContent" => generate(mock, model, &body, Framing::JsonArray),
        "embedContent" => embed_one(model, &body),
        "batchEmbedContents" => embed_batch(model, &body),
        other => error(404, "NOT_FOUND", &format!("Method {other} is not found for models/{model}.")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Whole,
    Sse,
    JsonArray,
}

fn turn(body: &Map<String, Value>) -> Result<Turn, String> {
    let contents = match body.get("contents").and_then(Value::as_array) {
        Some(contents) if !contents.is_empty() => contents,
        _ => return Err("* GenerateContentRequest.contents: contents is not specified".to_owned()),
    };
    let mut turn = Turn::default();
    turn.all_text.push(content_text(body.get("systemInstruction").and_then(|s| s.get("parts")), "text"));
    for content in contents {
        let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
        if !matches!(role, "user" | "model" | "function") {
            return Err("Please use a valid role: user, model.".to_owned());
        }
        let parts = content.get("parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let responses: Vec<String> =
            parts.iter().filter_map(|p| p.get("functionResponse")).map(|r| r.to_string()).collect();
        let text = content_text(content.get("parts"), "text");
        turn.after_tool = !responses.is_empty();
        turn.last_text = match role {
            _ if turn.after_tool => responses.join(" "),
            "user" => text.clone(),
            _ => String::new(),
        };
        turn.all_text.push(text);
    }
    turn.first_tool = body
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|tools| tools.iter().find_map(|t| t.pointer("/functionDeclarations/0/name")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(turn)
}

fn generate(mock: &MockLlm, model: &str, body: &Map<String, Value>, framing: Framing) -> Reply {
    let turn = match turn(body) {
        Ok(turn) => turn,
        Err(message) => return error(400, "INVALID_ARGUMENT", &message),
    };
    if let Some(status) = turn.requested_failure() {
        return failure(status);
    }
    let answer = turn.answer();
    let (input, output) = (turn.input_tokens(), answer.output_tokens());
    let usage =
        json!({"promptTokenCount": input, "candidatesTokenCount": output, "totalTokenCount": input + output});
    let response = |parts: Value, finish: Option<&str>, usage: Option<&Value>| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(finish) = finish {
            set(&mut candidate, "finishReason", json!(finish));
        }
        let mut response =
            json!({"candidates": [candidate], "modelVersion": model, "responseId": "mock-response-1"});
        if let Some(usage) = usage {
            set(&mut response, "usageMetadata", usage.clone());
        }
        response
    };
    let call = |name: &str| {
        let args: Value = serde_json::from_str(TOOL_ARGUMENTS).unwrap_or(Value::Null);
        json!([{"functionCall": {"name": name, "args": args}}])
    };
    if framing == Framing::Whole {
        let parts = match &answer {
            Answer::Text(text) => json!([{"text": text}]),
            Answer::ToolCall { name } => call(name),
        };
        // Gemini finishes with STOP after a function call too.
        return Reply::json(200, &response(parts, Some("STOP"), Some(&usage)));
    }
    let chunks: Vec<Value> = match &answer {
        Answer::Text(text) => {
            let pieces = Answer::text_pieces(text);
            let last = pieces.len().saturating_sub(1);
            pieces
                .iter()
                .enumerate()
                .map(|(i, piece)| {
                    let done = i == last;
                    response(json!([{"text": piece}]), done.then_some("STOP"), done.then_some(&usage))
                })
                .collect()
        }
        Answer::ToolCall { name } => vec![response(call(name), Some("STOP"), Some(&usage))],
    };
    if framing == Framing::JsonArray {
        return Reply::json(200, &Value::Array(chunks));
    }
    mock.sse(chunks.iter().map(|chunk| sse_event(None, chunk, "\r\n")).collect())
}

fn embed_one(model: &str, body: &Map<String, Value>) -> Reply {
    match embed(model, body) {
        Ok(values) => Reply::json(200, &json!({"embedding": {"values": values}})),
        Err(reply) => reply,
    }
}

fn embed_batch(model: &str, body: &Map<String, Value>) -> Reply {
    let requests = match body.get("requests").and_then(Value::as_array) {
        Some(requests) if !requests.is_empty() => requests,
        _ => {
            return error(
                400,
                "INVALID_ARGUMENT",
                "* BatchEmbedContentsRequest.requests: requests is not specified",
            )
        }
    };
    let mut embeddings = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let Some(request) = request.as_object() else {
            return error(400, "INVALID_ARGUMENT", &format!("requests[{i}] must be an object"));
        };
        if request.get("model").and_then(Value::as_str) != Some(format!("models/{model}").as_str()) {
            return error(400, "INVALID_ARGUMENT", &format!(
                "* BatchEmbedContentsRequest.requests[{i}].model: the model must be models/{model}, as in the URL"));
        }
        match embed(model, request) {
            Ok(values) => embeddings.push(json!({"values": values})),
            Err(reply) => return reply,
        }
    }
    Reply::json(200, &json!({"embeddings": embeddings}))
}

/// The vector for one `{content: {parts: [{text}]}}` request.
fn embed(_model: &str, request: &Map<String, Value>) -> Result<Vec<f32>, Reply> {
    let parts = request
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty());
    let Some(parts) = parts else {
        return Err(error(
            400,
            "INVALID_ARGUMENT",
            "* EmbedContentRequest.content: contents is not specified",
        ));
    };
    let text = content_text(Some(&Value::Array(parts.clone())), "text");
    if let Some(status) = requested_failure(&text) {
        return Err(failure(status));
    }
    Ok(embedding(&text))
}

fn invalid_key() -> Reply {
    Reply::json(
        400,
        &json!({"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}),
    )
}

/// A failure asked for with `mock:status=NNN`, with the gRPC status name Google pairs with it.
fn failure(status: u16) -> Reply {
    let (name, message) = match status {
        429 => ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        400..=499 => ("INVALID_ARGUMENT", "The mock was asked to refuse this request"),
        _ => ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    };
    error(status, name, message)
}

fn error(status: u16, name: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"error": {"code": status, "message": message, "status": name}}))
}

//! OpenAI chat request → Gemini `GenerateContentRequest` (`contents`, `systemInstruction`, `tools`,
//! `toolConfig`, `generationConfig`), listing what Gemini cannot honour.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::chat::{ChatRequest, Content, ContentPart, ImageUrl, Message, Role, Tool, ToolChoice};
use crate::AiError;

/// OpenAI extras that Gemini's `generationConfig` has a field for.
const PENALTIES: [(&str, &str); 2] =
    [("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")];

/// The request body and the JSON names of the fields left out, in a stable order.
pub(super) fn chat_body(req: &ChatRequest) -> Result<(Value, Vec<String>), AiError> {
    let mut dropped = Vec::new();
    let mut body = Map::new();
    let (system, contents) = conversation(&req.messages, &mut dropped)?;
    if contents.is_empty() {
        return Err(AiError::invalid("messages", "Gemini needs at least one user or assistant message"));
    }
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(tools) = &req.tools {
        let declarations = function_declarations(tools, &mut dropped);
        if !declarations.is_empty() {
            body.insert("tools".into(), json!([{ "functionDeclarations": declarations }]));
        }
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("toolConfig".into(), json!({ "functionCallingConfig": calling_config(choice)? }));
    }
    let config = generation_config(req)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if req.user.is_some() {
        dropped.push("user".into());
    }
    dropped.extend(unknown_extras(&req.extra, &PENALTIES.map(|(name, _)| name)));
    Ok((Value::Object(body), dropped))
}

/// Non-null extras other than `handled`, sorted so the dropped list does not depend on map ordering.
pub(super) fn unknown_extras(extra: &Map<String, Value>, handled: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = extra
        .iter()
        .filter(|(name, value)| !value.is_null() && !handled.contains(&name.as_str()))
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names
}

/// `(systemInstruction parts, contents)`. Gemini wants turns that alternate, so consecutive turns of one
/// role (a user message after tool results, say) are merged into one.
fn conversation(
    messages: &[Message],
    dropped: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<Value>), AiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut call_names: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, message) in messages.iter().enumerate() {
        note_unsupported_fields(i, message, dropped);
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                system.extend(text_parts(i, message, dropped));
                continue;
            }
            Role::User => ("user", user_parts(i, message, dropped)?),
            Role::Assistant => ("model", model_parts(i, message, &mut call_names, dropped)?),
            Role::Tool | Role::Function => {
                ("user", vec![function_response(i, message, &call_names, dropped)?])
            }
        };
        // Gemini rejects a turn without parts (an assistant message with empty content, say).
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, last_parts)) if *last == role => last_parts.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let contents = turns.into_iter().map(|(role, parts)| json!({ "role": role, "parts": parts })).collect();
    Ok((system, contents))
}

/// Message fields with no Gemini counterpart: `name` (except where it names a function) and extras.
fn note_unsupported_fields(i: usize, message: &Message, dropped: &mut Vec<String>) {
    if message.name.is_some() && !matches!(message.role, Role::Tool | Role::Function) {
        dropped.push(format!("messages[{i}].name"));
    }
    dropped.extend(unknown_extras(&message.extra, &[]).into_iter().map(|k| format!("messages[{i}].{k}")));
}

/// Text parts of a message whose other parts Gemini cannot take in that position; empty text is skipped
/// because Gemini refuses an empty `text`.
fn text_parts(i: usize, message: &Message, dropped: &mut Vec<String>) -> Vec<Value> {
    match &message.content {
        None => Vec::new(),
        Some(Content::Text(text)) => text_part(text).into_iter().collect(),
        Some(Content::Parts(parts)) => parts
            .iter()
            .enumerate()
            .filter_map(|(j, part)| match part {
                ContentPart::Text { text } => text_part(text),
                _ => {
                    dropped.push(format!("messages[{i}].content[{j}]"));
                    None
                }
            })
            .collect(),
    }
}

fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

fn user_parts(i: usize, message: &Message, dropped: &mut Vec<String>) -> Result<Vec<Value>, AiError> {
    let Some(Content::Parts(parts)) = &message.content else {
        return Ok(text_parts(i, message, dropped));
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let translated = match part {
            ContentPart::Text { text } => text_part(text),
            ContentPart::ImageUrl { image_url } => {
                if image_url.detail.as_deref().is_some_and(|d| d != "auto") {
                    dropped.push(format!("messages[{i}].content[{j}].image_url.detail"));
                }
                image_part(image_url, &format!("messages[{i}].content[{j}].image_url.url"))?
            }
            ContentPart::Other(_) => None,
        };
        match translated {
            Some(value) => out.push(value),
            None if matches!(part, ContentPart::Text { .. }) => {}
            None => dropped.push(format!("messages[{i}].content[{j}]")),
        }
    }
    Ok(out)
}

/// `data:` URLs go inline; `https` URLs are handed to Gemini to fetch; other schemes cannot be sent.
fn image_part(image: &ImageUrl, param: &str) -> Result<Option<Value>, AiError> {
    if let Some((mime_type, data)) = image.inline_data() {
        return Ok(Some(json!({ "inlineData": { "mimeType": mime_type, "data": data } })));
    }
    let scheme = |s: &str| image.url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s));
    if scheme("data:") {
        return Err(AiError::invalid(
            param,
            "an inline image must be a data URL of the form data:<type>;base64,<data>",
        ));
    }
    if scheme("https://") {
        return Ok(Some(
            json!({ "fileData": { "mimeType": mime_from_url(&image.url), "fileUri": image.url } }),
        ));
    }
    Ok(None)
}

/// Gemini requires a media type for a fetched file; the extension is all there is to go on.
pub(super) fn mime_from_url(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => "image/jpeg",
    }
}

fn model_parts<'a>(
    i: usize,
    message: &'a Message,
    call_names: &mut BTreeMap<&'a str, &'a str>,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, AiError> {
    let mut parts = text_parts(i, message, dropped);
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        if call.kind != "function" {
            dropped.push(format!("messages[{i}].tool_calls[{j}]"));
            continue;
        }
        let args = arguments(&call.function.arguments).ok_or_else(|| {
            AiError::invalid(
                format!("messages[{i}].tool_calls[{j}].function.arguments"),
                "tool call arguments must be a JSON object",
            )
        })?;
        call_names.insert(&call.id, &call.function.name);
        parts.push(json!({ "functionCall": { "name": call.function.name, "args": args } }));
    }
    Ok(parts)
}

/// OpenAI carries arguments as JSON text; Gemini wants the object. Empty text means no arguments.
fn arguments(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_slice::<Value>(text.as_bytes()).ok().filter(Value::is_object)
}

/// A tool result. Gemini matches results to calls by function name, which OpenAI's result does not carry:
/// it is looked up from the call with that id (the id itself stands in when no earlier call has it).
fn function_response(
    i: usize,
    message: &Message,
    call_names: &BTreeMap<&str, &str>,
    dropped: &mut Vec<String>,
) -> Result<Value, AiError> {
    let id = message.tool_call_id.as_deref();
    let name = match message.role {
        Role::Function => message.name.as_deref().or(id),
        _ => id.map(|id| call_names.get(id).copied().unwrap_or(id)).or(message.name.as_deref()),
    };
    let Some(name) = name else {
        return Err(AiError::invalid(
            format!("messages[{i}].tool_call_id"),
            "a tool message needs a tool_call_id",
        ));
    };
    let text = text_parts(i, message, dropped)
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<String>();
    let response = match serde_json::from_slice::<Value>(text.as_bytes()) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "content": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

fn function_declarations(tools: &[Tool], dropped: &mut Vec<String>) -> Vec<Value> {
    let mut declarations = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            dropped.push(format!("tools[{i}]"));
            continue;
        }
        let function = &tool.function;
        let mut declaration = Map::new();
        declaration.insert("name".into(), Value::String(function.name.clone()));
        if let Some(description) = &function.description {
            declaration.insert("description".into(), Value::String(description.clone()));
        }
        if let Some(parameters) = &function.parameters {
            declaration.insert("parameters".into(), parameters.clone());
        }
        // Gemini has no strict mode: a client relying on it must know the schema is not enforced.
        if function.strict == Some(true) {
            dropped.push(format!("tools[{i}].function.strict"));
        }
        declarations.push(Value::Object(declaration));
    }
    declarations
}

fn calling_config(choice: &ToolChoice) -> Result<Value, AiError> {
    let mode = match choice {
        ToolChoice::Function { function, .. } => {
            return Ok(json!({ "mode": "ANY", "allowedFunctionNames": [function.name] }));
        }
        ToolChoice::Mode(mode) => mode.as_str(),
    };
    let mode = match mode {
        "auto" => "AUTO",
        "none" => "NONE",
        "required" => "ANY",
        other => {
            return Err(AiError::invalid("tool_choice", format!("unknown tool_choice `{other}`")));
        }
    };
    Ok(json!({ "mode": mode }))
}

fn generation_config(req: &ChatRequest) -> Result<Map<String, Value>, AiError> {
    let mut config = Map::new();
    let mut set = |name: &str, value: Value| {
        config.insert(name.to_string(), value);
    };
    if let Some(t) = req.temperature {
        set("temperature", json!(t));
    }
    if let Some(p) = req.top_p {
        set("topP", json!(p));
    }
    if let Some(stop) = &req.stop {
        let stop = stop.to_vec();
        if !stop.is_empty() {
            set("stopSequences", json!(stop));
        }
    }
    if let Some(seed) = req.seed {
        set("seed", json!(seed));
    }
    if let Some(max) = req.max_output_tokens() {
        set("maxOutputTokens", json!(max));
    }
    if let Some(n) = req.n {
        set("candidateCount", json!(n));
    }
    for (openai, gemini) in PENALTIES {
        match req.extra.get(openai) {
            None | Some(Value::Null) => {}
            Some(value @ Value::Number(_)) => set(gemini, value.clone()),
            Some(_) => return Err(AiError::invalid(openai, format!("{openai} must be a number"))),
        }
    }
    if let Some(format) = &req.response_format {
        match format.kind.as_str() {
            "text" => {}
            "json_object" => set("responseMimeType", json!("application/json")),
            "json_schema" => {
                set("responseMimeType", json!("application/json"));
                if let Some(schema) = format.json_schema.as_ref().and_then(|s| s.schema.as_ref()) {
                    set("responseSchema", schema.clone());
                }
            }
            other => {
                return Err(AiError::invalid(
                    "response_format.type",
                    format!("unknown response_format type `{other}`"),
                ));
            }
        }
    }
    Ok(config)
}

//! OpenAI chat request → Bedrock Converse request body (`messages`, `system`, `inferenceConfig`,
//! `toolConfig`), listing what Converse cannot honour.

use serde_json::{json, Map, Value};

use crate::chat::{ChatRequest, Content, ContentPart, Message, MessagePath, Role, ToolChoice};
use crate::AiError;

/// The request body and the client fields left out of it: top-level names sorted, then nested paths in the
/// order they occur.
pub(super) fn converse_body(req: &ChatRequest) -> Result<(Value, Vec<String>), AiError> {
    let mut dropped = top_level_dropped(req);
    let mut nested = Vec::new();
    let (system, messages, has_tool_blocks) = conversation(&req.messages, &mut nested)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let config = inference_config(req);
    if !config.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(config));
    }
    if let Some(tool_config) = tool_config(req, has_tool_blocks, &mut dropped, &mut nested)? {
        body.insert("toolConfig".into(), tool_config);
    }
    dropped.sort();
    dropped.extend(nested);
    Ok((Value::Object(body), dropped))
}

/// Top-level fields Converse has no place for. Null extras ask for nothing and are not reported.
fn top_level_dropped(req: &ChatRequest) -> Vec<String> {
    let mut names: Vec<String> =
        req.extra.iter().filter(|(_, value)| !value.is_null()).map(|(name, _)| name.clone()).collect();
    if req.seed.is_some() {
        names.push("seed".into());
    }
    if req.n.is_some_and(|n| n > 1) {
        names.push("n".into());
    }
    if req.user.is_some() {
        names.push("user".into());
    }
    if req.response_format.as_ref().is_some_and(|f| f.kind != "text") {
        names.push("response_format".into());
    }
    names
}

fn inference_config(req: &ChatRequest) -> Map<String, Value> {
    let mut config = Map::new();
    if let Some(max) = req.max_output_tokens() {
        config.insert("maxTokens".into(), max.into());
    }
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), p.into());
    }
    let stops = req.stop.as_ref().map(|s| s.to_vec()).unwrap_or_default();
    if !stops.is_empty() {
        config.insert("stopSequences".into(), stops.into());
    }
    config
}

/// System blocks, and user/assistant messages that alternate (Converse refuses two in a row of one role,
/// so they merge: tool results become one user message with the text that follows them). The flag says
/// whether any `toolUse` or `toolResult` block was written.
fn conversation(
    messages: &[Message],
    dropped: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<Value>, bool), AiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut has_tool_blocks = false;
    for (i, message) in messages.iter().enumerate() {
        let path = &MessagePath(i);
        if message.name.is_some() && !matches!(message.role, Role::Tool | Role::Function) {
            dropped.push(format!("{path}.name"));
        }
        dropped.extend(
            message.extra.iter().filter(|(_, v)| !v.is_null()).map(|(name, _)| format!("{path}.{name}")),
        );
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                system.extend(text_blocks(message.content.as_ref(), path, dropped));
                continue;
            }
            Role::User => ("user", user_blocks(message.content.as_ref(), path, dropped)?),
            Role::Assistant => {
                let blocks = assistant_blocks(message, path, dropped)?;
                has_tool_blocks |= message.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
                ("assistant", blocks)
            }
            Role::Tool | Role::Function => {
                has_tool_blocks = true;
                ("user", vec![tool_result(message, path, dropped)?])
            }
        };
        // Converse refuses a message without content (an assistant turn with empty text, say).
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, last_blocks)) if *last == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.is_empty() {
        return Err(AiError::invalid(
            "messages",
            "Bedrock needs at least one user, assistant or tool message",
        ));
    }
    let turns =
        turns.into_iter().map(|(role, content)| json!({ "role": role, "content": content })).collect();
    Ok((system, turns, has_tool_blocks))
}

/// Text blocks of a message whose other parts Converse cannot take there; empty text is skipped because
/// Converse refuses a blank `text`.
fn text_blocks(content: Option<&Content>, path: &MessagePath, dropped: &mut Vec<String>) -> Vec<Value> {
    match content {
        None => Vec::new(),
        Some(Content::Text(text)) => text_block(text).into_iter().collect(),
        Some(Content::Parts(parts)) => parts
            .iter()
            .enumerate()
            .filter_map(|(j, part)| match part {
                ContentPart::Text { text } => text_block(text),
                _ => {
                    dropped.push(format!("{path}.content[{j}]"));
                    None
                }
            })
            .collect(),
    }
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// Text and images. Converse takes images inline only (or from S3, which an OpenAI client cannot name), so
/// an `https` image is dropped.
fn user_blocks(
    content: Option<&Content>,
    path: &MessagePath,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, AiError> {
    let Some(Content::Parts(parts)) = content else {
        return Ok(text_blocks(content, path, dropped));
    };
    let mut blocks = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match part {
            ContentPart::Text { text } => blocks.extend(text_block(text)),
            ContentPart::ImageUrl { image_url } => {
                let param = format!("{path}.content[{j}].image_url");
                let Some((media_type, data)) = image_url.inline_data() else {
                    if image_url.url.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("data:")) {
                        return Err(AiError::invalid(
                            format!("{param}.url"),
                            "an inline image must be a data URL of the form data:<type>;base64,<data>",
                        ));
                    }
                    dropped.push(format!("{path}.content[{j}]"));
                    continue;
                };
                if image_url.detail.as_deref().is_some_and(|d| d != "auto") {
                    dropped.push(format!("{param}.detail"));
                }
                let format = image_format(media_type).ok_or_else(|| {
                    AiError::invalid(
                        format!("{param}.url"),
                        format!("Bedrock takes png, jpeg, gif and webp images, not {media_type}"),
                    )
                })?;
                blocks.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            ContentPart::Other(_) => dropped.push(format!("{path}.content[{j}]")),
        }
    }
    Ok(blocks)
}

fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn assistant_blocks(
    message: &Message,
    path: &MessagePath,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, AiError> {
    let mut blocks = text_blocks(message.content.as_ref(), path, dropped);
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        if call.kind != "function" {
            dropped.push(format!("{path}.tool_calls[{j}]"));
            continue;
        }
        let input = arguments(&call.function.arguments).ok_or_else(|| {
            AiError::invalid(
                format!("{path}.tool_calls[{j}].function.arguments"),
                "tool call arguments must be a JSON object",
            )
        })?;
        blocks.push(json!({
            "toolUse": { "toolUseId": call.id, "name": call.function.name, "input": input }
        }));
    }
    Ok(blocks)
}

/// OpenAI carries arguments as JSON text; Converse wants the object. Empty text means no arguments.
fn arguments(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(text).ok().filter(Value::is_object)
}

/// A tool result: a JSON object result goes as `json`, anything else as text.
fn tool_result(message: &Message, path: &MessagePath, dropped: &mut Vec<String>) -> Result<Value, AiError> {
    let id = message.tool_call_id.as_deref().or(match message.role {
        Role::Function => message.name.as_deref(),
        _ => None,
    });
    let Some(id) = id else {
        return Err(AiError::invalid(format!("{path}.tool_call_id"), "a tool message needs a tool_call_id"));
    };
    let text: String = text_blocks(message.content.as_ref(), path, dropped)
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => json!({ "json": object }),
        _ => json!({ "text": text }),
    };
    Ok(json!({ "toolResult": { "toolUseId": id, "content": [content] } }))
}

/// `toolConfig`. Converse has no "none" choice: without tool blocks in the conversation the tools are left
/// out, which honours it; with them Converse requires `toolConfig`, so the tools go and `tool_choice` is
/// reported as dropped.
fn tool_config(
    req: &ChatRequest,
    has_tool_blocks: bool,
    dropped: &mut Vec<String>,
    nested: &mut Vec<String>,
) -> Result<Option<Value>, AiError> {
    let mut specs = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            nested.push(format!("tools[{i}]"));
            continue;
        }
        if tool.function.strict == Some(true) {
            nested.push(format!("tools[{i}].function.strict"));
        }
        let schema =
            tool.function.parameters.clone().unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        let mut spec = Map::new();
        spec.insert("name".into(), tool.function.name.clone().into());
        if let Some(description) = tool.function.description.as_deref().filter(|d| !d.is_empty()) {
            spec.insert("description".into(), description.into());
        }
        spec.insert("inputSchema".into(), json!({ "json": schema }));
        specs.push(json!({ "toolSpec": spec }));
    }
    let choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(json!({ "auto": {} })),
            "required" => Some(json!({ "any": {} })),
            "none" => {
                if !has_tool_blocks {
                    return Ok(None);
                }
                if !specs.is_empty() {
                    dropped.push("tool_choice".into());
                }
                None
            }
            other => {
                return Err(AiError::invalid("tool_choice", format!("unknown tool_choice `{other}`")));
            }
        },
        Some(ToolChoice::Function { function, .. }) => Some(json!({ "tool": { "name": function.name } })),
    };
    if specs.is_empty() {
        return Ok(None);
    }
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

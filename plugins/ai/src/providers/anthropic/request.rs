//! OpenAI chat request → Anthropic Messages request body.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::JSON_TOOL;
use crate::chat::{
    ChatRequest, Content, ContentPart, ImageUrl, Message, MessagePath, ResponseFormat, Role, ToolChoice,
};
use crate::AiError;

/// Anthropic requires `max_tokens`; this is sent when neither the client nor the config gives a limit.
const FALLBACK_MAX_TOKENS: u64 = 4096;

const JSON_TOOL_DESCRIPTION: &str =
    "Give your complete answer by calling this tool; its input is the answer, as JSON matching the schema.";

/// A translated request body and the client fields left out of it (top-level names sorted, then nested
/// paths in the order they occur). The messages borrow the client's text; serialised, the body is the
/// JSON object of `fields` and `messages`, keys in order.
pub(super) struct MessagesBody<'r> {
    fields: Map<String, Value>,
    messages: Vec<Turn<'r>>,
    pub dropped: Vec<String>,
}

impl Serialize for MessagesBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len().saturating_add(1)))?;
        let mut messages = Some(&self.messages);
        for (key, value) in &self.fields {
            if key.as_str() > "messages" {
                if let Some(messages) = messages.take() {
                    map.serialize_entry("messages", messages)?;
                }
            }
            map.serialize_entry(key, value)?;
        }
        if let Some(messages) = messages {
            map.serialize_entry("messages", messages)?;
        }
        map.end()
    }
}

/// One content block. Text, most of any conversation, borrows the client's text; other blocks are built
/// as JSON.
enum Block<'r> {
    Text(&'r str),
    Json(Value),
}

impl Block<'_> {
    fn into_value(self) -> Value {
        match self {
            Block::Text(text) => json!({ "type": "text", "text": text }),
            Block::Json(value) => value,
        }
    }
}

impl Serialize for Block<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Keys in the order a JSON object of them is written (sorted), as for every other block.
            Block::Text(text) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("text", text)?;
                map.serialize_entry("type", "text")?;
                map.end()
            }
            Block::Json(value) => value.serialize(serializer),
        }
    }
}

pub(super) fn messages_body<'r>(
    req: &'r ChatRequest,
    model: &str,
    default_max_tokens: u64,
) -> Result<MessagesBody<'r>, AiError> {
    let mut dropped = top_level_dropped(req);
    let mut nested = Vec::new();
    let (system, messages) = conversation(&req.messages, &mut nested)?;

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    let configured = Some(default_max_tokens).filter(|n| *n > 0);
    let max_tokens = req.max_output_tokens().or(configured).unwrap_or(FALLBACK_MAX_TOKENS);
    body.insert("max_tokens".into(), max_tokens.into());
    if !system.is_empty() {
        body.insert("system".into(), system.into());
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), p.into());
    }
    if let Some(stop) = &req.stop {
        let sequences = stop.to_vec();
        if !sequences.is_empty() {
            body.insert("stop_sequences".into(), sequences.into());
        }
    }
    if let Some(user) = &req.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    tools(req, &mut body, &mut nested)?;

    dropped.extend(nested);
    Ok(MessagesBody { fields: body, messages, dropped })
}

/// Top-level fields with no Anthropic counterpart. Null extras ask for nothing and are not reported.
fn top_level_dropped(req: &ChatRequest) -> Vec<String> {
    let mut names: Vec<String> = req
        .extra
        .iter()
        // parallel_tool_calls is honoured through tool_choice.disable_parallel_tool_use.
        .filter(|(name, value)| !value.is_null() && name.as_str() != "parallel_tool_calls")
        .map(|(name, _)| name.clone())
        .collect();
    if req.seed.is_some() {
        names.push("seed".into());
    }
    if req.n.is_some_and(|n| n > 1) {
        names.push("n".into());
    }
    names.sort();
    names
}

struct Turn<'r> {
    role: &'static str,
    blocks: Vec<Block<'r>>,
}

impl Serialize for Turn<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("content", &self.blocks)?;
        map.serialize_entry("role", self.role)?;
        map.end()
    }
}

/// System text, and the user/assistant turns. Anthropic requires turns to alternate, so consecutive
/// messages that map to the same role (a user message after tool results, several tool results) merge.
fn conversation<'r>(
    messages: &'r [Message],
    dropped: &mut Vec<String>,
) -> Result<(String, Vec<Turn<'r>>), AiError> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let path = &MessagePath(i);
        note_message_extras(message, path, dropped);
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                let text = system_text(message, path, dropped);
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            Role::User => ("user", content_blocks(message.content.as_ref(), path, dropped)?),
            Role::Assistant => ("assistant", assistant_blocks(message, path, dropped)?),
            Role::Tool | Role::Function => ("user", vec![tool_result(message, path, dropped)?]),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.blocks.extend(blocks),
            _ => turns.push(Turn { role, blocks }),
        }
    }
    if turns.is_empty() {
        return Err(AiError::invalid("messages", "at least one user, assistant or tool message is required"));
    }
    Ok((system.join("\n\n"), turns))
}

/// Message fields Anthropic has no place for: a participant `name` and other non-null extras.
fn note_message_extras(message: &Message, path: &MessagePath, dropped: &mut Vec<String>) {
    // A legacy function result's name identifies the function, which the tool_use id already does.
    if message.name.is_some() && !matches!(message.role, Role::Tool | Role::Function) {
        dropped.push(format!("{path}.name"));
    }
    for (name, value) in &message.extra {
        if !value.is_null() {
            dropped.push(format!("{path}.{name}"));
        }
    }
}

/// Anthropic's `system` is text only; other parts of a system message are reported as dropped.
fn system_text(message: &Message, path: &MessagePath, dropped: &mut Vec<String>) -> String {
    if let Some(Content::Parts(parts)) = &message.content {
        for (j, part) in parts.iter().enumerate() {
            if !matches!(part, ContentPart::Text { .. }) {
                dropped.push(format!("{path}.content[{j}]"));
            }
        }
    }
    message.text()
}

/// Text and image blocks; empty text is left out because Anthropic rejects empty text blocks.
fn content_blocks<'r>(
    content: Option<&'r Content>,
    path: &MessagePath,
    dropped: &mut Vec<String>,
) -> Result<Vec<Block<'r>>, AiError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(text)) if text.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(text)) => return Ok(vec![Block::Text(text)]),
        Some(Content::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        match part {
            ContentPart::Text { text } if text.is_empty() => {}
            ContentPart::Text { text } => blocks.push(Block::Text(text)),
            ContentPart::ImageUrl { image_url } => {
                blocks.push(Block::Json(image_block(image_url, &format!("{path}.content[{j}]"), dropped)?))
            }
            ContentPart::Other(_) => dropped.push(format!("{path}.content[{j}]")),
        }
    }
    Ok(blocks)
}

fn image_block(image: &ImageUrl, path: &str, dropped: &mut Vec<String>) -> Result<Value, AiError> {
    if image.detail.as_deref().is_some_and(|d| d != "auto") {
        dropped.push(format!("{path}.image_url.detail"));
    }
    let source = if let Some((media_type, data)) = image.inline_data() {
        json!({ "type": "base64", "media_type": media_type, "data": data })
    } else if image.url.starts_with("https://") || image.url.starts_with("http://") {
        json!({ "type": "url", "url": image.url })
    } else {
        return Err(AiError::invalid(
            format!("{path}.image_url.url"),
            "an image must be an http(s) URL or a data:<media type>;base64,<data> URL",
        ));
    };
    Ok(json!({ "type": "image", "source": source }))
}

fn assistant_blocks<'r>(
    message: &'r Message,
    path: &MessagePath,
    dropped: &mut Vec<String>,
) -> Result<Vec<Block<'r>>, AiError> {
    let mut blocks = content_blocks(message.content.as_ref(), path, dropped)?;
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let param = || format!("{path}.tool_calls[{j}].function.arguments");
        blocks.push(Block::Json(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": tool_input(&call.function.arguments, param)?,
        })));
    }
    Ok(blocks)
}

/// Anthropic takes a call's input as a JSON object where OpenAI carries JSON text. Some clients send `""`
/// for a call without arguments; that is an empty object.
fn tool_input(arguments: &str, param: impl FnOnce() -> String) -> Result<Value, AiError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(arguments.as_bytes()) {
        Ok(input @ Value::Object(_)) => Ok(input),
        Ok(_) => Err(AiError::invalid(param(), "tool call arguments must be a JSON object")),
        Err(e) => Err(AiError::invalid(param(), format!("tool call arguments are not valid JSON: {e}"))),
    }
}

fn tool_result<'r>(
    message: &'r Message,
    path: &MessagePath,
    dropped: &mut Vec<String>,
) -> Result<Block<'r>, AiError> {
    let Some(id) = &message.tool_call_id else {
        return Err(AiError::invalid(
            format!("{path}.tool_call_id"),
            "a tool message must name the tool call it answers",
        ));
    };
    let mut block = json!({ "type": "tool_result", "tool_use_id": id });
    let content = match &message.content {
        Some(Content::Text(text)) if !text.is_empty() => Some(Value::from(text.as_str())),
        Some(Content::Parts(_)) => {
            let blocks = content_blocks(message.content.as_ref(), path, dropped)?;
            (!blocks.is_empty()).then(|| blocks.into_iter().map(Block::into_value).collect())
        }
        _ => None,
    };
    if let (Some(content), Some(obj)) = (content, block.as_object_mut()) {
        obj.insert("content".into(), content);
    }
    Ok(Block::Json(block))
}

/// `tools`, `tool_choice`, `parallel_tool_calls` and `response_format` (which becomes a tool, see `JSON_TOOL`).
fn tools(req: &ChatRequest, body: &mut Map<String, Value>, dropped: &mut Vec<String>) -> Result<(), AiError> {
    let mut list = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            dropped.push(format!("tools[{i}]"));
            continue;
        }
        let function = &tool.function;
        if function.name == JSON_TOOL {
            return Err(AiError::invalid(
                format!("tools[{i}].function.name"),
                format!("the tool name `{JSON_TOOL}` is reserved by the gateway"),
            ));
        }
        if function.strict == Some(true) {
            dropped.push(format!("tools[{i}].function.strict"));
        }
        let schema =
            function.parameters.clone().unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        let mut entry = json!({ "name": function.name, "input_schema": schema });
        if let (Some(description), Some(obj)) = (&function.description, entry.as_object_mut()) {
            obj.insert("description".into(), description.as_str().into());
        }
        list.push(entry);
    }
    let client_tools = !list.is_empty();
    let mut choice = tool_choice(req.tool_choice.as_ref())?;
    let choice_type = choice.as_ref().and_then(|c| c.get("type")).and_then(Value::as_str).map(str::to_string);

    if let Some((schema, description)) = json_answer(req.response_format.as_ref(), dropped)? {
        // A forced client tool already fixes the answer's shape; otherwise the model must answer through
        // the JSON tool, or through a client tool when those are allowed (`any`).
        if choice_type.as_deref() != Some("tool") {
            list.push(json!({ "name": JSON_TOOL, "description": description, "input_schema": schema }));
            let may_call_client_tools = client_tools && choice_type.as_deref() != Some("none");
            choice = Some(if may_call_client_tools {
                json!({ "type": "any" })
            } else {
                json!({ "type": "tool", "name": JSON_TOOL })
            });
        }
    }

    if list.is_empty() {
        // A tool_choice without tools asks for nothing Anthropic could do; it is left out.
        return Ok(());
    }
    if req.extra.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        let choice = choice.get_or_insert_with(|| json!({ "type": "auto" }));
        let is_none = choice.get("type").and_then(Value::as_str) == Some("none");
        if let (false, Some(obj)) = (is_none, choice.as_object_mut()) {
            obj.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    body.insert("tools".into(), list.into());
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
    Ok(())
}

fn tool_choice(choice: Option<&ToolChoice>) -> Result<Option<Value>, AiError> {
    Ok(Some(match choice {
        None => return Ok(None),
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => json!({ "type": "none" }),
            other => {
                return Err(AiError::invalid("tool_choice", format!("unknown tool_choice `{other}`")));
            }
        },
        Some(ToolChoice::Function { kind, function }) if kind == "function" => {
            json!({ "type": "tool", "name": function.name })
        }
        Some(ToolChoice::Function { kind, .. }) => {
            return Err(AiError::invalid("tool_choice.type", format!("unknown tool_choice type `{kind}`")));
        }
    }))
}

/// The input schema and description of the JSON answer tool, when the client asked for JSON.
fn json_answer(
    format: Option<&ResponseFormat>,
    dropped: &mut Vec<String>,
) -> Result<Option<(Value, String)>, AiError> {
    let Some(format) = format else { return Ok(None) };
    let any_object = json!({ "type": "object" });
    match format.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some((any_object, JSON_TOOL_DESCRIPTION.to_string()))),
        "json_schema" => {
            let Some(spec) = &format.json_schema else {
                return Err(AiError::invalid("response_format.json_schema", "json_schema is required"));
            };
            // Anthropic follows a tool's schema but does not guarantee it the way strict mode does.
            if spec.strict == Some(true) {
                dropped.push("response_format.json_schema.strict".into());
            }
            let description = match &spec.description {
                Some(d) => format!("{JSON_TOOL_DESCRIPTION} The answer: {d}"),
                None => JSON_TOOL_DESCRIPTION.to_string(),
            };
            Ok(Some((spec.schema.clone().unwrap_or(any_object), description)))
        }
        other => {
            Err(AiError::invalid("response_format.type", format!("unknown response_format type `{other}`")))
        }
    }
}

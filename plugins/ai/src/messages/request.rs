//! A Messages request (`POST /v1/messages`) read, and turned into the `ChatRequest` every adapter takes.
//!
//! What has no counterpart in OpenAI's shape is listed in `dropped` (the gateway reports or refuses it as
//! `ai.unsupported_fields` says): server tools, `top_k`, `thinking`, documents, unknown top-level fields.
//! `cache_control` is a caching hint, not a request: it is left out silently. Thinking blocks an agent sends
//! back in its history are the model's own earlier reasoning; other providers cannot take them and they are
//! left out silently too.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::chat::{
    ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, FunctionName, ImageUrl, Message, Role,
    Stop, StreamOptions, Tool, ToolCall, ToolChoice,
};

/// `POST /v1/messages` as the client sent it (also the body of `count_tokens`, which has no `max_tokens`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<InToolChoice>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub thinking: Option<Value>,
    /// `service_tier`, `container`, `mcp_servers`, ...: nothing another provider can honour.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InMessage {
    pub role: InRole,
    pub content: InContent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InRole {
    User,
    Assistant,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum InContent {
    Text(String),
    Blocks(Vec<Block>),
}

/// `system`: a string or text blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<InContent>,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {},
    RedactedThinking {},
    /// `document`, `search_result`, server tool blocks, ...
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// `file` (the Files API): only Anthropic can resolve it.
    #[serde(other)]
    Other,
}

/// `tool_choice`: `{"type":"auto"|"any"|"none"}` or `{"type":"tool","name":...}`.
#[derive(Clone, Debug, Deserialize)]
pub struct InToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub disable_parallel_tool_use: bool,
}

/// The chat request for a Messages request, and the fields (JSON paths) that had to be left out.
pub fn to_chat_request(req: &MessagesRequest) -> (ChatRequest, Vec<String>) {
    let mut dropped = Vec::new();
    let mut messages = Vec::with_capacity(req.messages.len().saturating_add(1));
    if let Some(system) = &req.system {
        let text = match system {
            System::Text(text) => text.clone(),
            System::Blocks(blocks) => blocks
                .iter()
                .filter_map(|b| match b {
                    Block::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        };
        messages.push(text_message(Role::System, text));
    }
    for (i, message) in req.messages.iter().enumerate() {
        convert_message(message, i, &mut messages, &mut dropped);
    }

    let mut extra = Map::new();
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .enumerate()
            .filter_map(|(i, tool)| convert_tool(tool, i, &mut dropped))
            .collect::<Vec<_>>()
    });
    let tools = tools.filter(|t| !t.is_empty());
    let tool_choice = req.tool_choice.as_ref().and_then(|choice| {
        if choice.disable_parallel_tool_use && tools.is_some() {
            extra.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
        match choice.kind.as_str() {
            "auto" => Some(ToolChoice::Mode("auto".into())),
            "any" => Some(ToolChoice::Mode("required".into())),
            "none" => Some(ToolChoice::Mode("none".into())),
            "tool" => choice.name.as_ref().map(|name| ToolChoice::Function {
                kind: "function".into(),
                function: FunctionName { name: name.clone() },
            }),
            _ => {
                dropped.push("tool_choice".into());
                None
            }
        }
    });
    // OpenAI refuses a tool_choice without tools.
    let tool_choice = tool_choice.filter(|_| tools.is_some());

    if req.top_k.is_some() {
        dropped.push("top_k".into());
    }
    if req.thinking.as_ref().is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled")) {
        dropped.push("thinking".into());
    }
    dropped.extend(req.extra.keys().cloned());
    let user =
        req.metadata.as_ref().and_then(|m| m.get("user_id")).and_then(Value::as_str).map(str::to_string);

    let chat = ChatRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        // Usage comes last in an OpenAI stream only when asked for; Anthropic clients always get it.
        stream_options: req.stream.then_some(StreamOptions { include_usage: true }),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.clone().filter(|s| !s.is_empty()).map(Stop::Many),
        max_tokens: req.max_tokens,
        user,
        tools,
        tool_choice,
        extra,
        ..ChatRequest::default()
    };
    (chat, dropped)
}

fn text_message(role: Role, text: String) -> Message {
    Message {
        role,
        content: Some(Content::Text(text)),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }
}

/// One Messages message: a user turn's tool results become `tool` messages (first, as OpenAI wants them
/// right after the assistant's calls), the rest one user or assistant message.
fn convert_message(message: &InMessage, i: usize, out: &mut Vec<Message>, dropped: &mut Vec<String>) {
    let role = match message.role {
        InRole::User => Role::User,
        InRole::Assistant => Role::Assistant,
    };
    let blocks = match &message.content {
        InContent::Text(text) => {
            out.push(text_message(role, text.clone()));
            return;
        }
        InContent::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = || format!("messages[{i}].content[{j}]");
        match block {
            Block::Text { text } => parts.push(ContentPart::Text { text: text.clone() }),
            Block::Image { source } if role == Role::User => match image_url(source) {
                Some(url) => parts.push(ContentPart::ImageUrl { image_url: url }),
                None => dropped.push(at()),
            },
            Block::ToolUse { id, name, input } if role == Role::Assistant => calls.push(ToolCall {
                id: id.clone(),
                kind: "function".into(),
                function: FunctionCall { name: name.clone(), arguments: arguments(input) },
            }),
            Block::ToolResult { tool_use_id, content, is_error } if role == Role::User => {
                let mut text = match content {
                    None => String::new(),
                    Some(InContent::Text(text)) => text.clone(),
                    Some(InContent::Blocks(inner)) => {
                        let mut texts = Vec::new();
                        for (k, block) in inner.iter().enumerate() {
                            match block {
                                Block::Text { text } => texts.push(text.as_str()),
                                _ => dropped.push(format!("{}.content[{k}]", at())),
                            }
                        }
                        texts.join("\n")
                    }
                };
                if *is_error {
                    text.insert_str(0, "Error: ");
                }
                out.push(Message {
                    tool_call_id: Some(tool_use_id.clone()),
                    ..text_message(Role::Tool, text)
                });
            }
            Block::Thinking {} | Block::RedactedThinking {} => {}
            _ => dropped.push(at()),
        }
    }
    if parts.is_empty() && calls.is_empty() {
        return;
    }
    let content = match (role, parts.as_slice()) {
        // An assistant turn of text (OpenAI takes only text from the assistant) is one string.
        (Role::Assistant, _) => {
            let text: String = parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            (!text.is_empty()).then_some(Content::Text(text))
        }
        (_, [ContentPart::Text { text }]) => Some(Content::Text(text.clone())),
        _ => Some(Content::Parts(parts)),
    };
    out.push(Message {
        role,
        content,
        name: None,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        extra: Map::new(),
    });
}

fn image_url(source: &ImageSource) -> Option<ImageUrl> {
    let url = match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url.clone(),
        ImageSource::Other => return None,
    };
    Some(ImageUrl { url, detail: None })
}

/// A tool call's input as OpenAI's `arguments` text.
fn arguments(input: &Value) -> String {
    match input {
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}

/// A client tool (`{name, description, input_schema}`, `type` absent or `custom`) as a function; server
/// tools (`web_search_...`, `bash_...`, with a versioned `type`) run at Anthropic only.
fn convert_tool(tool: &Value, i: usize, dropped: &mut Vec<String>) -> Option<Tool> {
    let kind = tool.get("type").and_then(Value::as_str);
    let name = tool.get("name").and_then(Value::as_str);
    match (kind, name) {
        (None | Some("custom"), Some(name)) => Some(Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: name.to_string(),
                description: tool.get("description").and_then(Value::as_str).map(str::to_string),
                parameters: tool.get("input_schema").cloned(),
                strict: None,
            },
        }),
        _ => {
            dropped.push(format!("tools[{i}]"));
            None
        }
    }
}

/// Roughly what a prompt costs in tokens, for `count_tokens` when the provider cannot count: the text the
/// model reads (system, messages, tool definitions) at four characters a token, rounded up.
pub fn estimate_input_tokens(req: &MessagesRequest) -> u64 {
    let mut chars = 0usize;
    let mut add = |text: &str| chars = chars.saturating_add(text.chars().count());
    let blocks = |blocks: &[Block], add: &mut dyn FnMut(&str)| {
        for block in blocks {
            match block {
                Block::Text { text } => add(text),
                Block::ToolUse { name, input, .. } => {
                    add(name);
                    add(&input.to_string());
                }
                Block::ToolResult { content: Some(InContent::Text(text)), .. } => add(text),
                Block::ToolResult { content: Some(InContent::Blocks(inner)), .. } => {
                    for block in inner {
                        if let Block::Text { text } = block {
                            add(text);
                        }
                    }
                }
                // An image costs about as much as a thousand tokens' worth of text.
                Block::Image { .. } => add(&" ".repeat(4 * 1_000)),
                _ => {}
            }
        }
    };
    match &req.system {
        Some(System::Text(text)) => add(text),
        Some(System::Blocks(list)) => blocks(list, &mut add),
        None => {}
    }
    for message in &req.messages {
        match &message.content {
            InContent::Text(text) => add(text),
            InContent::Blocks(list) => blocks(list, &mut add),
        }
    }
    for tool in req.tools.iter().flatten() {
        add(&tool.to_string());
    }
    let chars = u64::try_from(chars).unwrap_or(u64::MAX);
    chars.div_ceil(4).max(1)
}

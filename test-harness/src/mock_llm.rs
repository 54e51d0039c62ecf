//! Mock AI providers for tests and the demo: each speaks one provider's real wire format (paths, credential
//! header, request fields it insists on, JSON and SSE responses, its own error shape), so Tollgate's
//! translations are checked against the providers' protocols rather than against themselves.
//!
//! The mocks answer from the request, deterministically:
//! - the reply text is `echo: <the last user text>` ([`echo_text`]);
//! - when the request offers tools and the last message is the user's, the reply calls the first tool with
//!   [`TOOL_ARGUMENTS`];
//! - `mock:status=NNN` anywhere in the last user text (or an embedding input) makes the provider fail with
//!   that status, in its own error shape;
//! - usage counts whitespace-separated words: every text in the request in, the reply's words out;
//! - embeddings are [`embedding`] of each input.
//!
//! A request the real provider would refuse (wrong path, missing or wrong key, a required field absent) is
//! refused the way that provider refuses it.

mod anthropic;
mod gemini;
mod openai;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde_json::Value;

use crate::upstream::{EchoUpstream, ReceivedRequest, Reply};

/// The arguments of every tool call the mocks make, as the JSON text a client receives.
pub const TOOL_ARGUMENTS: &str = r#"{"city":"Paris","unit":"celsius"}"#;

/// Dimensions of [`embedding`] vectors.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// Which provider's wire format a mock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Mistral,
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Ok(match name {
            "openai" | "openai_compatible" => ProviderKind::OpenAi,
            "azure" => ProviderKind::Azure,
            "anthropic" => ProviderKind::Anthropic,
            "gemini" => ProviderKind::Gemini,
            "mistral" => ProviderKind::Mistral,
            other => {
                return Err(format!("unknown provider {other:?} (openai, azure, anthropic, gemini, mistral)"))
            }
        })
    }
}

/// One mock provider: its kind, the only API key it accepts, and how it paces streamed events.
#[derive(Debug, Clone)]
pub struct MockLlm {
    kind: ProviderKind,
    key: String,
    base_path: String,
    event_delay: Duration,
}

impl MockLlm {
    /// A mock of `kind` that accepts only `key` (in that provider's credential header).
    pub fn new(kind: ProviderKind, key: &str) -> Self {
        MockLlm {
            kind,
            key: key.to_owned(),
            base_path: "/v1".to_owned(),
            event_delay: Duration::from_millis(1),
        }
    }

    /// The path prefix OpenAI-style mocks serve under (default `/v1`; an OpenAI-compatible server may use
    /// another, such as `/openai/v1`).
    pub fn base_path(mut self, prefix: &str) -> Self {
        self.base_path = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// The pause before each streamed event (default 1 ms), so events leave as separate writes.
    pub fn event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = delay;
        self
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The reply this provider gives to `request`.
    pub fn answer(&self, request: &ReceivedRequest) -> Reply {
        match self.kind {
            ProviderKind::OpenAi | ProviderKind::Azure | ProviderKind::Mistral => {
                openai::answer(self, request)
            }
            ProviderKind::Anthropic => anthropic::answer(self, request),
            ProviderKind::Gemini => gemini::answer(self, request),
        }
    }

    /// Serves this mock on `127.0.0.1:<free port>`; the upstream records every request it gets.
    pub fn start(self) -> std::io::Result<EchoUpstream> {
        EchoUpstream::start_with(move |request| self.answer(request))
    }

    /// A streamed reply: each item is one whole SSE event, sent after the configured delay.
    fn sse(&self, events: Vec<String>) -> Reply {
        Reply::sse(events.into_iter().map(|event| (self.event_delay, event)))
    }
}

/// The reply text for a last user message `text`.
pub fn echo_text(text: &str) -> String {
    format!("echo: {text}")
}

/// A deterministic embedding of `text`: [`EMBEDDING_DIMENSIONS`] multiples of 1/256 in [0, 1), exact in
/// both JSON decimals and base64 float32, so clients may compare them exactly.
pub fn embedding(text: &str) -> Vec<f32> {
    let sum = text.bytes().fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(u32::from(b)));
    (0..EMBEDDING_DIMENSIONS as u32).map(|i| (sum.wrapping_add(i * 37) % 256) as f32 / 256.0).collect()
}

/// What the mock says, before a provider module puts it in its own words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Text(String),
    ToolCall { name: String },
}

impl Answer {
    fn output_tokens(&self) -> u64 {
        match self {
            Answer::Text(text) => words(text),
            Answer::ToolCall { .. } => words(TOOL_ARGUMENTS),
        }
    }

    /// The reply text in the pieces a stream sends it in: one word (with its leading space) each.
    fn text_pieces(text: &str) -> Vec<String> {
        let mut pieces: Vec<String> = Vec::new();
        for (i, word) in text.split(' ').enumerate() {
            pieces.push(if i == 0 { word.to_owned() } else { format!(" {word}") });
        }
        pieces
    }
}

/// The tool arguments in the pieces a stream sends them in (three, split mid-token as real streams do).
fn argument_pieces() -> Vec<&'static str> {
    let (head, rest) = TOOL_ARGUMENTS.split_at(5);
    let (middle, tail) = rest.split_at(12);
    vec![head, middle, tail]
}

/// The conversation as far as the mock cares, read from any provider's request.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    /// Text of the last message when it is the user's (or a tool result's).
    pub last_text: String,
    /// The last message is a tool result rather than the user speaking.
    pub after_tool: bool,
    pub first_tool: Option<String>,
    /// Every text in the request, for the input token count.
    pub all_text: Vec<String>,
}

impl Turn {
    fn answer(&self) -> Answer {
        match &self.first_tool {
            Some(name) if !self.after_tool => Answer::ToolCall { name: name.clone() },
            _ => Answer::Text(echo_text(&self.last_text)),
        }
    }

    fn input_tokens(&self) -> u64 {
        self.all_text.iter().map(|t| words(t)).sum::<u64>().max(1)
    }

    /// The status `mock:status=NNN` in the last text asks the provider to fail with.
    fn requested_failure(&self) -> Option<u16> {
        requested_failure(&self.last_text)
    }
}

fn requested_failure(text: &str) -> Option<u16> {
    let rest = text.split("mock:status=").nth(1)?;
    rest.get(..3)?.parse().ok().filter(|status| (400..600).contains(status))
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Text of a content value that is a string, or a list of parts whose text sits under `text_key`.
fn content_text(content: Option<&Value>, text_key: &str) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get(text_key).and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

/// The request body as a JSON object, or `None` when it is not one.
fn json_object(request: &ReceivedRequest) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(&request.body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The path without its query, and the value of one query parameter.
fn split_path(path: &str) -> (&str, &str) {
    path.split_once('?').unwrap_or((path, ""))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

/// One `data:` SSE event (`event:` line first when given), terminated by a blank line.
fn sse_event(event: Option<&str>, data: &Value, line_end: &str) -> String {
    match event {
        Some(name) => format!("event: {name}{line_end}data: {data}{line_end}{line_end}"),
        None => format!("data: {data}{line_end}{line_end}"),
    }
}

/// Sets `key` on a JSON object (a no-op on anything else, which the mocks never build).
fn set(value: &mut Value, key: &str, field: Value) {
    if let Some(map) = value.as_object_mut() {
        map.insert(key.to_owned(), field);
    }
}

/// The fixed creation time of every mock response (2025-01-01T00:00:00Z).
const CREATED: u64 = 1_735_689_600;

/// The benchmarks' OpenAI chat request of about 5 KB for an Anthropic model: a system prompt, eight turns, and
/// `last_words` words in the last user turn (the mock streams one event per word, plus 7 framing events).
pub fn bench_chat_request(stream: bool, last_words: usize) -> serde_json::Value {
    use serde_json::json;
    let filler = "The quick brown fox jumps over the lazy dog while the proxy translates every field. ";
    let mut messages = vec![json!({"role": "system", "content": filler.repeat(8)})];
    for turn in 0..8 {
        messages.push(json!({"role": "user", "content": format!("Question {turn}: {}", filler.repeat(3))}));
        messages
            .push(json!({"role": "assistant", "content": format!("Answer {turn}: {}", filler.repeat(2))}));
    }
    let last: Vec<String> = (0..last_words).map(|i| format!("w{i}")).collect();
    messages.push(json!({"role": "user", "content": last.join(" ")}));
    let usage = if stream { json!({"include_usage": true}) } else { serde_json::Value::Null };
    json!({"model": "claude-sonnet-4-5", "messages": messages, "stream": stream, "temperature": 0.2,
           "max_tokens": 512, "stream_options": usage})
}

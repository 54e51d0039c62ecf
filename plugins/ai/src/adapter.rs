//! The seam between the provider-neutral gateway and one provider's wire format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::{ChatRequest, ChunkChoice};
use crate::sse::{EventDecoder, SseEvent, SseParser};
use crate::{AiError, Usage};

/// A provider entry of the config, as every adapter needs it (compiled from `ai.providers[]`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProviderSettings {
    /// The config's name for this provider (metrics, errors, `x-tollgate-provider`).
    pub name: String,
    /// Path prefix taken from the provider's `base_url`, without a trailing slash (`""`, `"/v1"`, ...).
    pub base_path: String,
    /// The provider credential injected upstream; never logged.
    pub api_key: Option<String>,
    /// Azure's `api-version` query parameter, Anthropic's `anthropic-version` header.
    pub api_version: Option<String>,
    /// Azure: model name → deployment name (a model without an entry is used as the deployment name).
    pub deployments: BTreeMap<String, String>,
    /// Output limit to send when the client gave none and the provider requires one (Anthropic).
    pub default_max_tokens: u64,
    /// `host[:port]` of `base_url`, the `:authority` the gateway sends (Bedrock signs it as `host`).
    pub authority: String,
    /// Bedrock: the static AWS credentials and region requests are signed with; never logged.
    pub aws: Option<crate::providers::AwsCredentials>,
}

/// Written by hand so that an adapter printed with `{:?}` never shows the provider key.
impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("base_path", &self.base_path)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_version", &self.api_version)
            .field("deployments", &self.deployments)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("authority", &self.authority)
            .field("aws", &self.aws)
            .finish()
    }
}

/// What one request is routed to, and the facts an adapter needs that are not in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The model name the provider knows (after aliases and wildcards).
    pub upstream_model: &'a str,
    /// The model name the client asked for.
    pub client_model: &'a str,
    /// Unix seconds now, for `created`.
    pub created: u64,
    /// An id unique to this request, for responses whose provider gives none (`chatcmpl-<id>`).
    pub request_id: &'a str,
}

/// The request to send upstream instead of the client's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// `:path`, query included.
    pub path: String,
    /// Headers to set (credential, version, content type). The gateway removes the client's credential
    /// headers and sets `:authority` and the cluster itself.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Request fields the provider cannot honour and that were left out (JSON names, e.g. `seed`,
    /// `messages[2].content[1]` for an unsupported part).
    pub dropped: Vec<String>,
}

/// A translated response body and the usage it reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Translated {
    pub body: Vec<u8>,
    pub usage: Usage,
}

/// `POST /v1/embeddings` as the client sent it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    /// A string, an array of strings, or token arrays.
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One provider's wire format. Implementations are pure: bytes and values in, bytes and values out.
pub trait Adapter: std::fmt::Debug {
    /// Translates a chat request. `req.model` is the client's name; use `target.upstream_model`.
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError>;

    /// Translates a successful (2xx) non-streaming chat response into an OpenAI `chat.completion`.
    fn chat_response(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, AiError>;

    /// A translator for the SSE stream that answers a `stream: true` request.
    fn stream_translator(&self, target: &Target<'_>) -> Box<dyn StreamTranslator>;

    /// What splits a streamed answer into the events `stream_translator` reads; server-sent events unless
    /// the provider frames its streams otherwise. `max_event_bytes` bounds what one unfinished event holds.
    fn stream_decoder(&self, max_event_bytes: usize) -> Box<dyn EventDecoder> {
        Box::new(SseParser::new(max_event_bytes))
    }

    /// Translates an embeddings request; providers without embeddings say so with a 400.
    fn embeddings_request(
        &self,
        _req: &EmbeddingsRequest,
        _target: &Target<'_>,
    ) -> Result<UpstreamRequest, AiError> {
        Err(AiError::InvalidRequest {
            param: Some("model".into()),
            message: "the provider serving this model has no embeddings API".into(),
        })
    }

    /// Translates a successful embeddings response into OpenAI's `{"object":"list","data":[...]}`.
    fn embeddings_response(&self, _body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        Err(AiError::BadUpstreamResponse("embeddings are not supported by this provider".into()))
    }

    /// `embeddings_response` with the client's request at hand, for adapters whose output depends on it
    /// (`encoding_format: "base64"` when the provider only returns floats). The gateway calls this one.
    fn embeddings_response_for(
        &self,
        _req: &EmbeddingsRequest,
        body: &[u8],
        target: &Target<'_>,
    ) -> Result<Translated, AiError> {
        self.embeddings_response(body, target)
    }

    /// Turns a provider error response (any non-2xx status, any body, JSON or not) into the error the client
    /// gets. The default reads OpenAI's `{"error":{...}}` shape.
    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        openai_style_error(status, body)
    }
}

/// Reads `{"error":{"message","type","code"}}` (or any body at all) into an `AiError::Upstream` that keeps the
/// provider's status; 5xx and unreadable statuses become 502 so clients retry sensibly.
pub fn openai_style_error(status: u16, body: &[u8]) -> AiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().map(|v| v.get("error").unwrap_or(v));
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).map(str::to_string);
    let message = field("message").unwrap_or_else(|| fallback_message(status, body));
    let code = field("code").or_else(|| error.and_then(|e| e.get("code")).map(|c| c.to_string()));
    AiError::Upstream {
        status: client_status(status),
        kind: field("type").unwrap_or_else(|| kind_for(status)),
        code,
        message,
    }
}

/// The status a client sees for a provider's status: 4xx as is, everything else a 502.
pub fn client_status(status: u16) -> u16 {
    if (400..500).contains(&status) {
        status
    } else {
        502
    }
}

/// OpenAI's error `type` for a status, for providers whose errors carry none.
pub fn kind_for(status: u16) -> String {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "upstream_error",
    }
    .to_string()
}

/// A message for an error body that has none: the start of the body when it is text, else the status.
pub fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("the upstream provider answered with status {status}")
    } else {
        format!("the upstream provider answered with status {status}: {text}")
    }
}

/// Turns one provider's SSE events into OpenAI chunks.
pub trait StreamTranslator: std::fmt::Debug {
    /// One complete upstream event. Write the chunks it yields to `out` (possibly none).
    fn on_event(&mut self, event: &SseEvent, out: &mut ChunkSink) -> Result<(), AiError>;

    /// The upstream stream ended. Write anything still owed. `Err(TruncatedStream)` when the provider's final
    /// event never came. The gateway writes the usage chunk and `data: [DONE]` itself.
    fn finish(&mut self, out: &mut ChunkSink) -> Result<(), AiError>;

    /// Usage as reported so far (complete after the final event).
    fn usage(&self) -> Usage;

    /// The provider's own final event has arrived (`[DONE]`, `message_stop`): the gateway ends the client's
    /// stream now rather than at the upstream's end of stream, which may come with trailers, when no body
    /// is left to write the closing events into. False where the format has no such event.
    fn ended(&self) -> bool {
        false
    }
}

/// A JSON value's bytes, written straight into a buffer (`Value`'s `to_string` goes through the formatting
/// machinery, several times slower on a 5 KB body).
pub fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(&mut out, value);
    out
}

/// `data: {"id":<id>,"object":"chat.completion.chunk","created":<created>,"model":<model>,"choices":`
fn chunk_head(id: &str, created: u64, model: &str) -> Vec<u8> {
    let mut head = b"data: {\"id\":".to_vec();
    write_json(&mut head, id);
    head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    head.extend_from_slice(created.to_string().as_bytes());
    head.extend_from_slice(b",\"model\":");
    write_json(&mut head, model);
    head.extend_from_slice(b",\"choices\":");
    head
}

/// Appends a value's JSON to `out`.
fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Writing plain data into a Vec cannot fail; should it, the output still parses.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Where a `StreamTranslator` writes: serialises chunks as SSE `data:` events, stamping id, model and
/// created on each. Translators update `id` / `model` when the provider names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkSink {
    pub id: String,
    pub model: String,
    pub created: u64,
    /// The SSE bytes written so far (the gateway drains them after each body callback).
    pub bytes: Vec<u8>,
    /// How many chunks carried content or tool-call text (time to first token is taken at the first).
    pub content_chunks: u64,
    /// The start every chunk of this stream shares (`data: {"id":..,"object":..,"created":..,"model":..,
    /// "choices":`), written once, and the id, created and model it was written for.
    head: Vec<u8>,
    head_for: (String, u64, String),
}

impl ChunkSink {
    pub fn new(target: &Target<'_>) -> Self {
        ChunkSink {
            id: format!("chatcmpl-{}", target.request_id),
            model: target.upstream_model.to_string(),
            created: target.created,
            bytes: Vec::new(),
            content_chunks: 0,
            head: Vec::new(),
            head_for: Default::default(),
        }
    }

    /// Writes one `chat.completion.chunk` with these choices.
    pub fn chunk(&mut self, choices: Vec<ChunkChoice>) {
        let carries_text = choices.iter().any(|c| c.delta.content.is_some() || c.delta.tool_calls.is_some());
        if carries_text {
            self.content_chunks = self.content_chunks.saturating_add(1);
        }
        self.write_chunk(&choices, None);
    }

    /// Writes a chunk of message text for choice `index`, `role` on the first: what `chunk` writes for one
    /// choice whose delta has only these, without building the choice (the commonest event of every stream).
    pub fn text(&mut self, index: u32, role: Option<&str>, text: &str) {
        self.content_chunks = self.content_chunks.saturating_add(1);
        self.start_chunk();
        self.bytes.extend_from_slice(b"[{\"index\":");
        write_json(&mut self.bytes, &index);
        self.bytes.extend_from_slice(b",\"delta\":{");
        if let Some(role) = role {
            self.bytes.extend_from_slice(b"\"role\":");
            write_json(&mut self.bytes, role);
            self.bytes.push(b',');
        }
        self.bytes.extend_from_slice(b"\"content\":");
        write_json(&mut self.bytes, text);
        self.bytes.extend_from_slice(b"},\"finish_reason\":null}]}\n\n");
    }

    /// Writes the final usage chunk (`choices: []`).
    pub fn usage_chunk(&mut self, usage: &Usage) {
        self.write_chunk(&[], Some(&usage.to_openai()));
    }

    /// Writes a chunk: the stream's shared start (rewritten only when a translator changed the id, created
    /// or model), then the choices and usage serialised straight into the output. Field order and bytes are
    /// those of `ChatChunk` serialised.
    fn write_chunk(&mut self, choices: &[ChunkChoice], usage: Option<&Value>) {
        self.start_chunk();
        write_json(&mut self.bytes, &choices);
        if let Some(usage) = usage {
            self.bytes.extend_from_slice(b",\"usage\":");
            write_json(&mut self.bytes, usage);
        }
        self.bytes.extend_from_slice(b"}\n\n");
    }

    /// Writes the stream's shared start of a chunk, up to and including `"choices":`.
    fn start_chunk(&mut self) {
        let (id, created, model) = &self.head_for;
        if self.head.is_empty() || *id != self.id || *created != self.created || *model != self.model {
            self.head = chunk_head(&self.id, self.created, &self.model);
            self.head_for = (self.id.clone(), self.created, self.model.clone());
        }
        self.bytes.extend_from_slice(&self.head);
    }

    /// Writes an event whose data is already an OpenAI chunk (pass-through providers).
    pub fn raw(&mut self, data: &str) {
        self.bytes.extend_from_slice(b"data: ");
        self.bytes.extend_from_slice(data.as_bytes());
        self.bytes.extend_from_slice(b"\n\n");
    }

    pub fn write(&mut self, value: &Value) {
        self.bytes.extend_from_slice(b"data: ");
        write_json(&mut self.bytes, value);
        self.bytes.extend_from_slice(b"\n\n");
    }

    /// `data: [DONE]`, the end of every OpenAI stream.
    pub fn done(&mut self) {
        self.raw("[DONE]");
    }

    /// What was written since the last take. The next writes start in a buffer as large as this one was,
    /// rather than growing from nothing each time.
    pub fn take(&mut self) -> Vec<u8> {
        let capacity = self.bytes.len();
        std::mem::replace(&mut self.bytes, Vec::with_capacity(capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink writes, byte for byte, what serialising a `ChatChunk` writes, and notices a changed id.
    #[test]
    fn sink_chunks_are_chat_chunks() {
        use crate::chat::{ChatChunk, Delta};
        let target = Target { upstream_model: "m\"1", client_model: "m", created: 7, request_id: "r" };
        let mut sink = ChunkSink::new(&target);
        let choice = |text: &str| ChunkChoice {
            index: 0,
            delta: Delta { content: Some(text.into()), ..Delta::default() },
            finish_reason: None,
        };
        let expected = |id: &str, choices: Vec<ChunkChoice>, usage: Option<Value>| {
            let chunk = ChatChunk {
                id: id.into(),
                object: "chat.completion.chunk".into(),
                created: 7,
                model: "m\"1".into(),
                choices,
                usage,
            };
            format!("data: {}\n\n", serde_json::to_string(&chunk).unwrap())
        };
        sink.chunk(vec![choice("a\u{e9}\n")]);
        sink.id = "other".into();
        sink.chunk(vec![choice("b")]);
        sink.text(0, None, "c\"\u{1}");
        sink.text(3, Some("assistant"), "");
        let usage = Usage { input_tokens: 1, output_tokens: 2, ..Usage::default() };
        sink.usage_chunk(&usage);
        let written = String::from_utf8(sink.take()).unwrap();
        let want = expected("chatcmpl-r", vec![choice("a\u{e9}\n")], None)
            + &expected("other", vec![choice("b")], None)
            + &expected("other", vec![choice("c\"\u{1}")], None)
            + &expected(
                "other",
                vec![ChunkChoice {
                    delta: Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    index: 3,
                    ..choice("")
                }],
                None,
            )
            + &expected("other", Vec::new(), Some(usage.to_openai()));
        assert_eq!(written, want);
    }

    #[test]
    fn adapters_never_print_the_provider_key() {
        let aws = crate::providers::AwsCredentials {
            region: "eu-west-3".into(),
            access_key_id: "AKIA-xyzzy-id".into(),
            secret_access_key: "aws-xyzzy-key".into(),
            session_token: Some("aws-xyzzy-token".into()),
        };
        let settings =
            ProviderSettings { api_key: Some("sk-secret-1234".into()), aws: Some(aws), ..Default::default() };
        for kind in ["openai", "azure", "anthropic", "gemini", "mistral", "openai_compatible", "bedrock"] {
            let kind: crate::providers::ProviderKind =
                serde_json::from_value(serde_json::json!(kind)).unwrap();
            let printed = format!("{:?}", kind.adapter(settings.clone()));
            assert!(!printed.contains("sk-secret") && !printed.contains("xyzzy"), "{printed}");
            assert!(
                printed.contains("eu-west-3") || kind != crate::providers::ProviderKind::Bedrock,
                "{printed}"
            );
        }
    }
}

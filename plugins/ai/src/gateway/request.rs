//! The request body of an AI route: parsed as OpenAI's shape, routed to a provider, translated, and the
//! head edits that send it there.

use std::time::UNIX_EPOCH;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tollgate_core::{HeaderEdits, LocalReply, Ports};

use super::metrics::{Labels, ERRORS, REQUESTS};
use super::{Ai, AiRequest, AiStream, Endpoint, Format, Forwarded, ESTIMATED_HEADER, PROVIDER_HEADER};
use crate::adapter::{EmbeddingsRequest, Target, UpstreamRequest};
use crate::chat::ChatRequest;
use crate::config::UnsupportedFields;
use crate::messages::{
    estimate_input_tokens, to_chat_request, MessagesRequest, COUNT_TOKENS_PATH, MESSAGES_PATH,
};
use crate::providers::{AnthropicAdapter, ProviderKind};
use crate::AiError;

/// What the client's body asked for, whichever endpoint it was.
enum Parsed {
    Chat(Box<ChatRequest>),
    Embeddings(Box<EmbeddingsRequest>),
    /// A Messages request (or a count_tokens one): read for conversion, and kept whole for Anthropic.
    Messages {
        request: Box<MessagesRequest>,
        raw: Box<Value>,
    },
}

impl Parsed {
    fn model(&self) -> &str {
        match self {
            Parsed::Chat(req) => &req.model,
            Parsed::Embeddings(req) => &req.model,
            Parsed::Messages { request, .. } => &request.model,
        }
    }
}

impl Ai {
    /// Refuses a request body that has grown past `limits.max_request_bytes` (413), so the pipeline can stop
    /// buffering before the whole body has arrived.
    pub fn check_request_size(&self, len: usize) -> Result<(), AiError> {
        let limit = self.config.limits.max_request_bytes;
        if len > limit {
            return Err(AiError::TooLarge { what: "the request body", limit, status: 413 });
        }
        Ok(())
    }

    /// The whole request body of an AI route arrived: returns the head edits and the body to send upstream,
    /// the gateway's own answer, or the error the client gets. Errors are counted here; the caller turns
    /// them into replies (`AiStream::error_reply`).
    pub fn on_request_body(
        &self,
        stream: &mut AiStream,
        body: &[u8],
        ports: Ports<'_>,
    ) -> Result<AiRequest, AiError> {
        self.on_request_body_decorated(stream, body, ports, &|_| {})
    }

    /// As `on_request_body`, with `decorate` applied to a chat request before it is translated (prompt
    /// decorators: messages every request of a route gets, whichever provider serves it). A Messages request
    /// converted for a provider other than Anthropic is decorated too; one sent to Anthropic as it is, not.
    pub fn on_request_body_decorated(
        &self,
        stream: &mut AiStream,
        body: &[u8],
        ports: Ports<'_>,
        decorate: &dyn Fn(&mut ChatRequest),
    ) -> Result<AiRequest, AiError> {
        let result = self.translate_request(stream, body, ports, decorate);
        if result.is_err() {
            let labels = stream.forwarded.as_ref().map(|f| f.labels.clone());
            let labels = labels.unwrap_or_else(|| Labels::unrouted(stream.consumer.as_deref()));
            labels.count(ports, ERRORS);
            stream.forwarded = None;
        }
        result
    }

    fn translate_request(
        &self,
        stream: &mut AiStream,
        body: &[u8],
        ports: Ports<'_>,
        decorate: &dyn Fn(&mut ChatRequest),
    ) -> Result<AiRequest, AiError> {
        let Some(endpoint) = stream.endpoint else {
            return Err(AiError::invalid("model", "not an AI route"));
        };
        self.check_request_size(body.len())?;
        let parsed = match endpoint {
            Endpoint::Chat => {
                let mut request: ChatRequest = parse(body)?;
                decorate(&mut request);
                Parsed::Chat(Box::new(request))
            }
            Endpoint::Embeddings => Parsed::Embeddings(Box::new(parse(body)?)),
            Endpoint::Messages | Endpoint::CountTokens => {
                let raw: Value = parse(body)?;
                let request = MessagesRequest::deserialize(&raw).map_err(|e| AiError::InvalidRequest {
                    param: None,
                    message: format!("not a Messages request: {e}"),
                })?;
                Parsed::Messages { request: Box::new(request), raw: Box::new(raw) }
            }
        };
        let model = parsed.model();
        if model.is_empty() {
            return Err(AiError::invalid("model", "model: must name a model"));
        }
        let found =
            self.config.router.route(model).ok_or_else(|| AiError::UnknownModel(model.to_string()))?;
        let label_model = if found.route.is_wildcard() { found.route.name.as_str() } else { model };
        let choice = self.choose(found, ports);
        let (provider, adapter) = self
            .provider_key(choice.provider, choice.key)
            .ok_or_else(|| AiError::UnknownModel(model.to_string()))?;
        let native = provider.kind == ProviderKind::Anthropic;
        // Counting tokens is free at Anthropic and estimated here for everyone else; it is not a request
        // to a model, so it is not counted as one.
        if let (Endpoint::CountTokens, false, Parsed::Messages { request, .. }) = (endpoint, native, &parsed)
        {
            let estimate = estimate_input_tokens(request);
            let mut reply =
                LocalReply::json(200, "tollgate_count_tokens_estimate", &json!({ "input_tokens": estimate }));
            reply.headers.push((PROVIDER_HEADER.into(), provider.settings.name.clone()));
            reply.headers.push((ESTIMATED_HEADER.into(), "true".into()));
            return Ok(AiRequest::Answer(reply));
        }
        let now = ports.clock.now();
        let created = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let request_id = stream.request_id.clone().unwrap_or_else(|| self.fresh_request_id(created));
        let (is_stream, include_usage, format) = match &parsed {
            Parsed::Chat(req) => (req.stream, req.wants_stream_usage(), Format::OpenAi),
            Parsed::Embeddings(_) => (false, false, Format::OpenAi),
            Parsed::Messages { request, .. } => {
                (request.stream, true, if native { Format::AnthropicNative } else { Format::Anthropic })
            }
        };
        let forwarded = Forwarded {
            provider: choice.provider,
            key: choice.key,
            upstream_model: choice.upstream_model.clone(),
            client_model: model.to_string(),
            created,
            request_id,
            stream: is_stream,
            include_usage,
            format,
            dropped: Vec::new(),
            embeddings: None,
            sent_at: now,
            labels: Labels::new(&provider.settings.name, label_model, stream.consumer.as_deref()),
        };
        // Kept before translating, so a refusal is counted against the provider and model it was meant for.
        let forwarded = stream.forwarded.insert(forwarded);
        let target: Target<'_> = forwarded.target();
        let upstream = match parsed {
            Parsed::Chat(req) => adapter.chat_request(&req, &target)?,
            Parsed::Embeddings(req) => {
                let upstream = adapter.embeddings_request(&req, &target)?;
                forwarded.embeddings = Some(req);
                upstream
            }
            Parsed::Messages { raw, .. } if native => {
                let path = if endpoint == Endpoint::CountTokens { COUNT_TOKENS_PATH } else { MESSAGES_PATH };
                AnthropicAdapter::native_request(
                    &provider.settings,
                    *raw,
                    &target,
                    path,
                    stream.anthropic_version,
                )
            }
            Parsed::Messages { request, .. } => {
                let (mut chat, dropped) = to_chat_request(&request);
                decorate(&mut chat);
                let mut upstream = adapter.chat_request(&chat, &target)?;
                upstream.dropped.splice(0..0, dropped);
                upstream
            }
        };
        if !upstream.dropped.is_empty() && self.config.unsupported_fields == UnsupportedFields::Reject {
            return Err(AiError::Unsupported {
                provider: provider.settings.name.clone(),
                fields: upstream.dropped,
            });
        }
        let UpstreamRequest { path, headers, body, dropped } = upstream;
        forwarded.dropped = dropped;
        forwarded.labels.count(ports, REQUESTS);
        self.note_choice(&choice, forwarded, ports);

        let mut edits = HeaderEdits::default();
        for name in &stream.strip {
            edits = edits.remove(*name);
        }
        let has_content_type = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        edits = edits
            .set(":path", path)
            .set(":authority", provider.authority.clone())
            .set(self.config.cluster_header.clone(), provider.cluster.clone());
        if !has_content_type {
            edits = edits.set("content-type", "application/json");
        }
        for (name, value) in headers {
            edits = edits.set(name, value);
        }
        Ok(AiRequest::Upstream { head: edits, body })
    }
}

/// Parses a client body; a malformed one is a 400 naming the field (`messages[1].role: unknown variant ...`).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AiError> {
    let text = std::str::from_utf8(body).map_err(|e| AiError::InvalidRequest {
        param: None,
        message: format!("the body is not UTF-8: {e}"),
    })?;
    serde_json::from_slice(text.as_bytes()).map_err(|inner| {
        if inner.is_syntax() || inner.is_eof() {
            return AiError::InvalidRequest {
                param: None,
                message: format!("the body is not valid JSON: {inner}"),
            };
        }
        let path = tollgate_core::json_error_path(body, &inner);
        if path.is_empty() {
            AiError::InvalidRequest { param: None, message: inner.to_string() }
        } else {
            AiError::InvalidRequest { param: Some(path.clone()), message: format!("{path}: {inner}") }
        }
    })
}

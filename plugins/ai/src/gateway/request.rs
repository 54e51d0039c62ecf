//! The request body of an AI route: parsed as OpenAI's shape, routed to a provider, translated, and the
//! head edits that send it there.

use std::time::UNIX_EPOCH;

use serde::de::DeserializeOwned;
use tollgate_core::{HeaderEdits, Ports};

use super::metrics::{Labels, ERRORS, REQUESTS};
use super::{Ai, AiStream, Endpoint, Forwarded};
use crate::adapter::{EmbeddingsRequest, Target, UpstreamRequest};
use crate::chat::ChatRequest;
use crate::config::UnsupportedFields;
use crate::AiError;

/// What the client's body asked for, whichever endpoint it was.
enum Parsed {
    Chat(Box<ChatRequest>),
    Embeddings(Box<EmbeddingsRequest>),
}

impl Parsed {
    fn model(&self) -> &str {
        match self {
            Parsed::Chat(req) => &req.model,
            Parsed::Embeddings(req) => &req.model,
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
    /// or the error the client gets. Errors are counted here; the caller turns them into replies
    /// (`AiError::to_reply`).
    pub fn on_request_body(
        &self,
        stream: &mut AiStream,
        body: &[u8],
        ports: Ports<'_>,
    ) -> Result<(HeaderEdits, Vec<u8>), AiError> {
        self.on_request_body_decorated(stream, body, ports, &|_| {})
    }

    /// As `on_request_body`, with `decorate` applied to a chat request before it is translated (prompt
    /// decorators: messages every request of a route gets, whichever provider serves it).
    pub fn on_request_body_decorated(
        &self,
        stream: &mut AiStream,
        body: &[u8],
        ports: Ports<'_>,
        decorate: &dyn Fn(&mut ChatRequest),
    ) -> Result<(HeaderEdits, Vec<u8>), AiError> {
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
    ) -> Result<(HeaderEdits, Vec<u8>), AiError> {
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
        };
        let model = parsed.model();
        if model.is_empty() {
            return Err(AiError::invalid("model", "model: must name a model"));
        }
        let found =
            self.config.router.route(model).ok_or_else(|| AiError::UnknownModel(model.to_string()))?;
        let (provider, adapter) =
            self.provider(found.route.provider).ok_or_else(|| AiError::UnknownModel(model.to_string()))?;
        let label_model = if found.route.is_wildcard() { found.route.name.as_str() } else { model };
        let now = ports.clock.now();
        let created = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let request_id = stream.request_id.clone().unwrap_or_else(|| self.fresh_request_id(created));
        let (is_stream, include_usage) = match &parsed {
            Parsed::Chat(req) => (req.stream, req.wants_stream_usage()),
            Parsed::Embeddings(_) => (false, false),
        };
        let forwarded = Forwarded {
            provider: found.route.provider,
            upstream_model: found.upstream_model.clone(),
            client_model: model.to_string(),
            created,
            request_id,
            stream: is_stream,
            include_usage,
            dropped: Vec::new(),
            embeddings: None,
            sent_at: now,
            labels: Labels::new(&provider.settings.name, label_model, stream.consumer.as_deref()),
        };
        // Kept before translating, so a refusal is counted against the provider and model it was meant for.
        let forwarded = stream.forwarded.insert(forwarded);
        let target: Target<'_> = forwarded.target();
        let upstream = match &parsed {
            Parsed::Chat(req) => adapter.chat_request(req, &target)?,
            Parsed::Embeddings(req) => adapter.embeddings_request(req, &target)?,
        };
        if !upstream.dropped.is_empty() && self.config.unsupported_fields == UnsupportedFields::Reject {
            return Err(AiError::Unsupported {
                provider: provider.settings.name.clone(),
                fields: upstream.dropped,
            });
        }
        let UpstreamRequest { path, headers, body, dropped } = upstream;
        forwarded.dropped = dropped;
        if let Parsed::Embeddings(req) = parsed {
            forwarded.embeddings = Some(req);
        }
        forwarded.labels.count(ports, REQUESTS);

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
        Ok((edits, body))
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

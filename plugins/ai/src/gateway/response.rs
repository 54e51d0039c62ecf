//! The upstream response head, and bodies read whole: JSON answers and provider errors translated into
//! OpenAI's shape, with the status the client should see.
//!
//! A `stream: true` request answered with a 2xx that is not an event stream is a 502: turning a complete
//! answer into chunks would be a second translation path for a provider misbehaving. A provider error
//! answer to a stream request is an ordinary JSON error, as OpenAI itself sends it.

use tollgate_core::{HeaderEdits, Ports, ResponseHead, REASON_HEADER};

use super::metrics::{ERRORS, UPSTREAM_LATENCY_MS};
use super::stream::{ClientStream, LiveStream, ResponseState};
use super::{Ai, AiStream, Endpoint, Format, Forwarded, DROPPED_HEADER, PROVIDER_HEADER};
use crate::adapter::{fallback_message, json_bytes, ChunkSink, Translated};
use crate::config::ProviderConfig;
use crate::messages::{anthropic_error_json, message_from_completion, MessagesEncoder};
use crate::AiError;

/// What the gateway decided about a response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AiResponseHead {
    /// Not a translated request: leave the response alone.
    Pass,
    /// An event stream: let the head through now with these edits; each body chunk is translated as it
    /// arrives (`Ai::on_response_body`).
    Stream(HeaderEdits),
    /// Hold the head; `Ai::on_response_body` decides head and body once the whole body is read.
    AwaitBody,
}

/// What the gateway decided about response body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AiBody {
    /// Keep buffering; the body is read whole.
    Buffer,
    /// Let the body through. `head` edits apply to a held head; `body`, when given, replaces the bytes seen.
    Continue { head: HeaderEdits, body: Option<Vec<u8>> },
}

impl Ai {
    /// The upstream's response head arrived.
    pub fn on_response_head(
        &self,
        stream: &mut AiStream,
        head: &ResponseHead,
        ports: Ports<'_>,
    ) -> AiResponseHead {
        let Some(forwarded) = &stream.forwarded else { return AiResponseHead::Pass };
        let Some((provider, adapter)) = self.provider(forwarded.provider) else {
            return AiResponseHead::Pass;
        };
        forwarded.labels.elapsed(ports, UPSTREAM_LATENCY_MS, forwarded.sent_at);
        self.note_status(forwarded, head.status, ports);
        let success = (200..300).contains(&head.status);
        let content_type = head.headers.get("content-type").unwrap_or("").to_ascii_lowercase();
        let encoded =
            head.headers.get("content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
        let decoder = (success && forwarded.stream && !encoded)
            .then(|| adapter.stream_decoder(self.config.limits.max_event_bytes))
            .filter(|decoder| content_type.starts_with(decoder.content_type()));
        if let Some(decoder) = decoder {
            let target = forwarded.target();
            let sink = ChunkSink::new(&target);
            let client = match forwarded.format {
                Format::OpenAi => ClientStream::OpenAi,
                Format::Anthropic => {
                    ClientStream::Anthropic(Box::new(MessagesEncoder::new(&sink.id, target.upstream_model)))
                }
                Format::AnthropicNative => ClientStream::Native { out: Vec::new() },
            };
            stream.response = ResponseState::Streaming(Box::new(LiveStream::new(
                decoder,
                adapter.stream_translator(&target),
                sink,
                client,
            )));
            let edits = client_edits(forwarded, provider)
                .remove("content-length")
                .set("content-type", "text/event-stream");
            return AiResponseHead::Stream(edits);
        }
        stream.response = ResponseState::Buffering { status: head.status, encoded };
        AiResponseHead::AwaitBody
    }

    /// Response body bytes arrived: for a held head, all of the body so far; for a stream, the new chunk.
    pub fn on_response_body(
        &self,
        stream: &mut AiStream,
        buffered: &[u8],
        end_of_stream: bool,
        ports: Ports<'_>,
    ) -> AiBody {
        let (status, encoded) = match &stream.response {
            ResponseState::Streaming(_) => {
                let body = self.on_response_chunk(stream, buffered, end_of_stream, ports);
                return AiBody::Continue { head: HeaderEdits::default(), body: Some(body) };
            }
            // What follows an answer already given (an error cut short) is swallowed.
            ResponseState::Finished => {
                return AiBody::Continue { head: HeaderEdits::default(), body: Some(Vec::new()) }
            }
            ResponseState::Waiting => return AiBody::Continue { head: HeaderEdits::default(), body: None },
            ResponseState::Buffering { status, encoded } => (*status, *encoded),
        };
        let limit = self.config.limits.max_response_bytes;
        if buffered.len() > limit {
            let error = AiError::TooLarge { what: "the upstream response body", limit, status: 502 };
            return self.finish_buffered(stream, Err(error), ports);
        }
        if !end_of_stream {
            return AiBody::Buffer;
        }
        if stream.forwarded.as_ref().is_some_and(|f| f.format == Format::AnthropicNative) && !encoded {
            return self.finish_native(stream, status, buffered, ports);
        }
        let translated = match (&stream.forwarded, self.provider_of(stream)) {
            (Some(forwarded), Some(adapter)) => {
                let target = forwarded.target();
                if encoded {
                    Err(AiError::BadUpstreamResponse(
                        "the body is compressed although no encoding was accepted".into(),
                    ))
                } else if !(200..300).contains(&status) {
                    Err(adapter.error_response(status, buffered))
                } else if forwarded.stream {
                    Err(AiError::BadUpstreamResponse(
                        "a streaming request was answered without an event stream".into(),
                    ))
                } else if let Some(req) = &forwarded.embeddings {
                    adapter.embeddings_response_for(req, buffered, &target)
                } else if forwarded.format == Format::Anthropic {
                    adapter.chat_response(buffered, &target).and_then(|completion| {
                        let message = message_from_completion(&completion.body, &completion.usage)?;
                        Ok(Translated { body: json_bytes(&message), usage: completion.usage })
                    })
                } else {
                    adapter.chat_response(buffered, &target)
                }
            }
            _ => return AiBody::Continue { head: HeaderEdits::default(), body: None },
        };
        self.finish_buffered(stream, translated, ports)
    }

    fn provider_of(&self, stream: &AiStream) -> Option<&dyn crate::Adapter> {
        self.provider(stream.forwarded.as_ref()?.provider).map(|(_, adapter)| adapter)
    }

    /// The client's answer to a body read whole: the translation, or the error in OpenAI's shape.
    fn finish_buffered(
        &self,
        stream: &mut AiStream,
        translated: Result<Translated, AiError>,
        ports: Ports<'_>,
    ) -> AiBody {
        stream.response = ResponseState::Finished;
        let Some(forwarded) = &stream.forwarded else {
            return AiBody::Continue { head: HeaderEdits::default(), body: None };
        };
        let mut head = match self.provider(forwarded.provider) {
            Some((provider, _)) => client_edits(forwarded, provider),
            None => HeaderEdits::default(),
        };
        // The body is always rewritten as plain JSON.
        head = head.remove("content-encoding").set("content-type", "application/json");
        let body = match translated {
            Ok(Translated { body, usage }) => {
                forwarded.labels.usage(ports, &usage);
                stream.usage = Some(usage);
                body
            }
            Err(error) => {
                forwarded.labels.count(ports, ERRORS);
                // A provider's own error code stays in the body; the header says what kind of failure it was.
                head = head.set(":status", error.status().to_string()).set(REASON_HEADER, error.reason());
                match forwarded.format {
                    Format::OpenAi => json_bytes(&error.to_openai_json()),
                    Format::Anthropic | Format::AnthropicNative => {
                        json_bytes(&anthropic_error_json(error.status(), &error.to_string()))
                    }
                }
            }
        };
        AiBody::Continue { head, body: Some(body) }
    }

    /// Anthropic's answer to an Anthropic client, read whole: passed on as it came (status, body and all),
    /// its usage read for metrics and budgets. What Anthropic's API would not send is replaced, as for every
    /// provider: an error not in Anthropic's error shape (an HTML page from a proxy) by one that is, keeping
    /// the status; an answer that is not a message, or a stream request answered without a stream, by a 502.
    fn finish_native(&self, stream: &mut AiStream, status: u16, body: &[u8], ports: Ports<'_>) -> AiBody {
        let (Some(forwarded), Some((provider, adapter))) =
            (&stream.forwarded, stream.forwarded.as_ref().and_then(|f| self.provider(f.provider)))
        else {
            stream.response = ResponseState::Finished;
            return AiBody::Continue { head: HeaderEdits::default(), body: None };
        };
        let outcome = if !(200..300).contains(&status) {
            if is_anthropic_error(body) {
                Ok(None)
            } else {
                let message = fallback_message(status, body);
                Err(AiError::Upstream { status, kind: String::new(), code: None, message })
            }
        } else if forwarded.stream {
            Err(AiError::BadUpstreamResponse(
                "a streaming request was answered without an event stream".into(),
            ))
        } else if stream.endpoint == Some(Endpoint::Messages) {
            adapter.chat_response(body, &forwarded.target()).map(|t| Some(t.usage))
        } else if serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|count| count.get("input_tokens").is_some_and(serde_json::Value::is_u64))
        {
            Ok(None)
        } else {
            Err(AiError::BadUpstreamResponse("a count_tokens answer without input_tokens".into()))
        };
        let usage = match outcome {
            Ok(usage) => usage,
            Err(error) => return self.finish_buffered(stream, Err(error), ports),
        };
        stream.response = ResponseState::Finished;
        // Every body that gets here was read as JSON.
        let mut head = client_edits(forwarded, provider).set("content-type", "application/json");
        match usage {
            Some(usage) => {
                forwarded.labels.usage(ports, &usage);
                stream.usage = Some(usage);
            }
            None if !(200..300).contains(&status) => {
                forwarded.labels.count(ports, ERRORS);
                head = head.set(REASON_HEADER, "provider_error");
            }
            None => {}
        }
        AiBody::Continue { head, body: None }
    }
}

/// Whether a body is an error in Anthropic's shape (`{"type":"error","error":{"type":...,"message":...}}`).
fn is_anthropic_error(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    value.get("type").and_then(serde_json::Value::as_str) == Some("error")
        && value.pointer("/error/type").is_some_and(serde_json::Value::is_string)
        && value.pointer("/error/message").is_some_and(serde_json::Value::is_string)
}

/// Headers every translated answer carries: who served it and what was left out of the request.
fn client_edits(forwarded: &Forwarded, provider: &ProviderConfig) -> HeaderEdits {
    let edits = HeaderEdits::default().set(PROVIDER_HEADER, provider.settings.name.clone());
    if forwarded.dropped.is_empty() {
        return edits;
    }
    // Field names can come from the client's JSON keys; only visible ASCII may go into a header.
    let list = forwarded.dropped.join(", ");
    let list: String = list.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect();
    edits.set(DROPPED_HEADER, list)
}

//! A streamed response: upstream bytes → events (SSE, or the provider's own framing) → the provider's translator → OpenAI chunks, one body
//! callback at a time. A failure mid-stream ends the client's stream with an error event and `[DONE]`,
//! after everything already translated, and the rest of the upstream stream is dropped.

use tollgate_core::Ports;

use super::metrics::{ERRORS, TIME_TO_FIRST_TOKEN_MS};
use super::{Ai, AiStream};
use crate::adapter::{ChunkSink, StreamTranslator};
use crate::messages::MessagesEncoder;
use crate::sse::{EventDecoder, SseEvent};
use crate::{AiError, Usage};

/// Where a response is in its translation.
#[derive(Debug, Default)]
pub(crate) enum ResponseState {
    /// No response head yet (or not a translated request).
    #[default]
    Waiting,
    /// An event stream, translated chunk by chunk.
    Streaming(Box<LiveStream>),
    /// A body read whole before it is translated; the upstream status and whether it came compressed.
    Buffering { status: u16, encoded: bool },
    /// The client has its whole answer; anything more from upstream is dropped.
    Finished,
}

impl ResponseState {
    pub fn usage_so_far(&self) -> Option<Usage> {
        match self {
            ResponseState::Streaming(live) => Some(live.translator.usage()),
            _ => None,
        }
    }
}

/// What the client of a stream receives.
#[derive(Debug)]
pub(crate) enum ClientStream {
    /// OpenAI chunks, as the translator writes them, then the usage chunk (when asked for) and `[DONE]`.
    OpenAi,
    /// Anthropic's named events, re-encoded from the translator's chunks.
    Anthropic(Box<MessagesEncoder>),
    /// Anthropic's own stream, passed on event by event (names and data as they came; the translator only
    /// reads usage from them): each event once it is whole and read, none after `message_stop`, and an error
    /// event to end it when it failed in a way its own events do not show.
    Native { out: Vec<u8> },
}

/// Hands an upstream event to the translator and, for a native Anthropic client, on to the client: once the
/// translator has read it without fault (or found it to be Anthropic's error event), and never after the
/// stream's last event.
fn deliver(
    translator: &mut Box<dyn StreamTranslator>,
    sink: &mut ChunkSink,
    client: &mut ClientStream,
    event: &SseEvent,
) -> Result<(), AiError> {
    let ClientStream::Native { out } = client else { return translator.on_event(event, sink) };
    if translator.ended() {
        return Ok(());
    }
    let read = translator.on_event(event, sink);
    // Anthropic's own error event ends the stream, and goes to the client as it came.
    if matches!(read, Ok(()) | Err(AiError::Upstream { .. })) {
        write_event(out, event);
    }
    read
}

/// Writes an event back in SSE framing: its name, then its data line by line.
fn write_event(out: &mut Vec<u8>, event: &SseEvent) {
    if let Some(name) = &event.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in event.data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[derive(Debug)]
pub(crate) struct LiveStream {
    parser: Box<dyn EventDecoder>,
    translator: Box<dyn StreamTranslator>,
    sink: ChunkSink,
    client: ClientStream,
    /// Time to first token is recorded once.
    first_token_seen: bool,
}

impl LiveStream {
    pub fn new(
        parser: Box<dyn EventDecoder>,
        translator: Box<dyn StreamTranslator>,
        sink: ChunkSink,
        client: ClientStream,
    ) -> Self {
        LiveStream { parser, translator, sink, client, first_token_seen: false }
    }

    /// Translates one chunk into the sink; `Ok(true)` once the stream is complete: at the upstream's end of
    /// stream, or as soon as the provider's final event is in.
    fn feed(&mut self, chunk: &[u8], end_of_stream: bool, include_usage: bool) -> Result<bool, AiError> {
        let (translator, sink, client) = (&mut self.translator, &mut self.sink, &mut self.client);
        self.parser.push_events(chunk, &mut |event| deliver(translator, sink, client, event))?;
        if !end_of_stream && !translator.ended() {
            return Ok(false);
        }
        self.parser.finish_events(&mut |event| deliver(translator, sink, client, event))?;
        self.translator.finish(&mut self.sink)?;
        if let ClientStream::OpenAi = self.client {
            if include_usage {
                self.sink.usage_chunk(&self.translator.usage());
            }
            self.sink.done();
        }
        Ok(true)
    }

    /// The stream failed: the client's stream ends with an error, after everything already translated.
    fn fail(&mut self, error: &AiError) {
        match &mut self.client {
            ClientStream::OpenAi => {
                self.sink.write(&error.to_openai_json());
                self.sink.done();
            }
            ClientStream::Anthropic(encoder) => {
                encoder.encode(&self.sink.take());
                encoder.fail(error);
            }
            // Anthropic's own error event is already in the bytes passed on; anything else is added.
            ClientStream::Native { out } => {
                if let AiError::Upstream { .. } = error {
                    // Anthropic's own error event: the one that failed the translator, passed on as it came.
                    return;
                }
                let mut encoder = MessagesEncoder::new("", "");
                encoder.fail(error);
                out.extend(encoder.take());
            }
        }
    }

    /// The bytes the client gets for this upstream chunk.
    fn output(&mut self, finished: bool) -> Vec<u8> {
        match &mut self.client {
            ClientStream::OpenAi => self.sink.take(),
            ClientStream::Anthropic(encoder) => {
                encoder.encode(&self.sink.take());
                if finished {
                    encoder.finish(&self.translator.usage());
                }
                encoder.take()
            }
            ClientStream::Native { out } => {
                // What the translator wrote is OpenAI's shape, for nobody.
                self.sink.bytes.clear();
                std::mem::take(out)
            }
        }
    }
}

impl Ai {
    /// Translates one chunk of an upstream event stream into the bytes the client gets for it (possibly
    /// none). Bytes after the stream ended, or after it failed, are dropped.
    pub fn on_response_chunk(
        &self,
        stream: &mut AiStream,
        chunk: &[u8],
        end_of_stream: bool,
        ports: Ports<'_>,
    ) -> Vec<u8> {
        let (ResponseState::Streaming(live), Some(forwarded)) = (&mut stream.response, &stream.forwarded)
        else {
            return Vec::new();
        };
        let outcome = live.feed(chunk, end_of_stream, forwarded.include_usage);
        if !live.first_token_seen && live.sink.content_chunks > 0 {
            live.first_token_seen = true;
            forwarded.labels.elapsed(ports, TIME_TO_FIRST_TOKEN_MS, forwarded.sent_at);
        }
        let finished = match outcome {
            Ok(done) => done,
            Err(error) => {
                live.fail(&error);
                forwarded.labels.count(ports, ERRORS);
                true
            }
        };
        let out = live.output(finished);
        if finished {
            let usage = live.translator.usage();
            forwarded.labels.usage(ports, &usage);
            stream.usage = Some(usage);
            stream.response = ResponseState::Finished;
        }
        out
    }
}

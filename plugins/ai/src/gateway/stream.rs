//! A streamed response: upstream bytes → events (SSE, or the provider's own framing) → the provider's translator → OpenAI chunks, one body
//! callback at a time. A failure mid-stream ends the client's stream with an error event and `[DONE]`,
//! after everything already translated, and the rest of the upstream stream is dropped.

use tollgate_core::Ports;

use super::metrics::{ERRORS, TIME_TO_FIRST_TOKEN_MS};
use super::{Ai, AiStream};
use crate::adapter::{ChunkSink, StreamTranslator};
use crate::sse::EventDecoder;
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

#[derive(Debug)]
pub(crate) struct LiveStream {
    parser: Box<dyn EventDecoder>,
    translator: Box<dyn StreamTranslator>,
    sink: ChunkSink,
    /// Time to first token is recorded once.
    first_token_seen: bool,
}

impl LiveStream {
    pub fn new(
        parser: Box<dyn EventDecoder>,
        translator: Box<dyn StreamTranslator>,
        sink: ChunkSink,
    ) -> Self {
        LiveStream { parser, translator, sink, first_token_seen: false }
    }

    /// Translates one chunk into the sink; `Ok(true)` once the stream is complete (`[DONE]` written): at the
    /// upstream's end of stream, or as soon as the provider's final event is in.
    fn feed(&mut self, chunk: &[u8], end_of_stream: bool, include_usage: bool) -> Result<bool, AiError> {
        let (translator, sink) = (&mut self.translator, &mut self.sink);
        self.parser.push_events(chunk, &mut |event| translator.on_event(event, sink))?;
        if !end_of_stream && !translator.ended() {
            return Ok(false);
        }
        let (translator, sink) = (&mut self.translator, &mut self.sink);
        self.parser.finish_events(&mut |event| translator.on_event(event, sink))?;
        self.translator.finish(&mut self.sink)?;
        if include_usage {
            self.sink.usage_chunk(&self.translator.usage());
        }
        self.sink.done();
        Ok(true)
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
                live.sink.write(&error.to_openai_json());
                live.sink.done();
                forwarded.labels.count(ports, ERRORS);
                true
            }
        };
        let out = live.sink.take();
        if finished {
            let usage = live.translator.usage();
            forwarded.labels.usage(ports, &usage);
            stream.usage = Some(usage);
            stream.response = ResponseState::Finished;
        }
        out
    }
}

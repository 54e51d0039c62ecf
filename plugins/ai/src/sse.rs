//! Server-sent events: an incremental parser that reassembles events split anywhere across body chunks,
//! with a bound on how much it holds.
//!
//! Lines end in `\n`, `\r\n` or a lone `\r`; a `\r\n` split across two chunks is still one line end. Bytes are
//! decoded per complete line, so a UTF-8 sequence split across chunks decodes whole; bytes that are not
//! UTF-8 at all are decoded lossily (U+FFFD) rather than failing the stream: the translators downstream read
//! JSON, which then reports the damage with context.

use std::borrow::Cow;

use crate::AiError;

/// One complete event as the upstream sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when present (Anthropic names every event; OpenAI and Gemini send none).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Turns a provider's streamed response body into events for its `StreamTranslator`, whatever its framing:
/// server-sent events (`SseParser`, nearly every provider) or another framing whose frames are handed on as
/// `SseEvent`s (the event's type in `event`, its payload in `data`).
pub trait EventDecoder: std::fmt::Debug {
    /// The media type of a response this decoder reads (lowercase, e.g. `text/event-stream`); a successful
    /// streaming answer of another type is not decoded.
    fn content_type(&self) -> &'static str;

    /// Feeds the next bytes; each event they complete goes to `each`. An error from `each` stops the decode
    /// and is returned. Malformed or oversized framing is an `AiError` (502), never a panic.
    fn push_events(
        &mut self,
        bytes: &[u8],
        each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError>;

    /// The body ended: hand on what is still held, or report a frame cut short.
    fn finish_events(
        &mut self,
        each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError>;
}

impl EventDecoder for SseParser {
    fn content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn push_events(
        &mut self,
        bytes: &[u8],
        each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError> {
        self.push_each(bytes, each)
    }

    fn finish_events(
        &mut self,
        each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError> {
        self.finish_each(each)
    }
}

/// Turns a byte stream into `SseEvent`s, holding at most `max_event_bytes` of one unfinished event. The event
/// in progress is built in place and handed out by reference (`push_each`), so a long stream reuses the same
/// buffers for every event.
#[derive(Clone, Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// The current line, not yet terminated.
    line: Vec<u8>,
    /// The last byte seen was `\r`: a `\n` right after it belongs to the same line end.
    after_cr: bool,
    /// No line has been completed yet (a byte-order mark may lead the first one).
    first_line: bool,
    /// The event in progress: its `data` so far, and `event` while an `event:` line has been seen.
    current: SseEvent,
    has_data: bool,
    /// The `event:` field's buffer between events (it moves into `current.event` when one is seen).
    event_name: String,
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            current: SseEvent::default(),
            has_data: false,
            event_name: String::new(),
        }
    }

    /// Feeds the next bytes of the stream and returns the events they complete. An event larger than the
    /// bound is an `AiError::TooLarge` (502), and what was held of it is dropped.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, AiError> {
        let mut events = Vec::new();
        self.push_each(bytes, |event| {
            events.push(event.clone());
            Ok(())
        })?;
        Ok(events)
    }

    /// As `push`, handing each completed event to `each` as it completes; an error from `each` stops the
    /// parse and is returned.
    pub fn push_each(
        &mut self,
        mut bytes: &[u8],
        mut each: impl FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError> {
        while !bytes.is_empty() {
            if std::mem::take(&mut self.after_cr) && bytes.first() == Some(&b'\n') {
                bytes = bytes.get(1..).unwrap_or_default();
                continue;
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) else {
                self.append(bytes)?;
                break;
            };
            let (segment, rest) = bytes.split_at_checked(end).unwrap_or((bytes, &[]));
            self.after_cr = rest.first() == Some(&b'\r');
            bytes = rest.get(1..).unwrap_or_default();
            // A line that arrived whole is read where it lies; one that began in an earlier chunk is joined
            // in the line buffer first.
            let blank = if self.line.is_empty() {
                self.make_room(segment.len())?;
                self.handle_line(segment)
            } else {
                self.append(segment)?;
                self.end_line()
            };
            if blank {
                self.dispatch(&mut each)?;
            }
        }
        Ok(())
    }

    /// The stream ended: returns the last event when the upstream did not close it with a blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut last = None;
        // Only `Ok` can come back: the closure never fails.
        let _ = self.finish_each(|event| {
            last = Some(event.clone());
            Ok(())
        });
        last
    }

    /// As `finish`, handing the last event (if any) to `each`.
    pub fn finish_each(
        &mut self,
        mut each: impl FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError> {
        // An unterminated last line still counts; blank or not, what the event holds goes out.
        if !self.line.is_empty() {
            self.end_line();
        }
        self.dispatch(&mut each)
    }

    /// Bytes held for the event in progress.
    fn held(&self) -> usize {
        let event = self.current.event.as_ref().map_or(0, String::len);
        self.line.len().saturating_add(self.current.data.len()).saturating_add(event)
    }

    fn append(&mut self, segment: &[u8]) -> Result<(), AiError> {
        self.make_room(segment.len())?;
        self.line.extend_from_slice(segment);
        Ok(())
    }

    /// Whether `more` bytes fit in the event in progress; when not, the event is dropped and it is an error.
    fn make_room(&mut self, more: usize) -> Result<(), AiError> {
        if self.held().saturating_add(more) > self.max_event_bytes {
            self.line = Vec::new();
            self.current = SseEvent::default();
            self.has_data = false;
            return Err(AiError::TooLarge {
                what: "an upstream stream event",
                limit: self.max_event_bytes,
                status: 502,
            });
        }
        Ok(())
    }

    /// Handles one complete line; `true` when it was blank, which completes an event. The line buffer keeps
    /// its capacity.
    fn end_line(&mut self) -> bool {
        let mut raw = std::mem::take(&mut self.line);
        let blank = self.handle_line(&raw);
        raw.clear();
        self.line = raw;
        blank
    }

    fn handle_line(&mut self, raw: &[u8]) -> bool {
        // Valid UTF-8 (every real stream) is checked by the fast validator and borrowed; only a line that is
        // not pays for the lossy repair.
        let mut line = match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
        if std::mem::take(&mut self.first_line) {
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string().into();
            }
        }
        if line.is_empty() {
            return true;
        }
        if line.starts_with(':') {
            return false;
        }
        // Field names are a few bytes long: a plain scan finds the colon sooner than a searcher is set up.
        let (field, value) = match line.bytes().position(|b| b == b':') {
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                (line.get(..colon).unwrap_or_default(), value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => {
                let mut name =
                    self.current.event.take().unwrap_or_else(|| std::mem::take(&mut self.event_name));
                name.clear();
                name.push_str(value);
                self.current.event = Some(name);
            }
            // `id` and `retry` steer browser reconnection, which a proxy in the middle does not do.
            _ => {}
        }
        false
    }

    /// Hands out the event in progress and starts the next one in the same buffers. An event without any
    /// `data:` line is not an event (the SSE specification's rule).
    fn dispatch(&mut self, each: &mut impl FnMut(&SseEvent) -> Result<(), AiError>) -> Result<(), AiError> {
        let result = if std::mem::take(&mut self.has_data) { each(&self.current) } else { Ok(()) };
        self.current.data.clear();
        if let Some(name) = self.current.event.take() {
            self.event_name = name;
        }
        result
    }
}

#[cfg(test)]
mod tests;

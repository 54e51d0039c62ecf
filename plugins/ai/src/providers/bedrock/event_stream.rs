//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), which ConverseStream answers
//! in. A frame is `[total length u32][headers length u32][prelude CRC32][headers][payload][message CRC32]`,
//! integers big-endian, both CRCs checked. Frames may be split anywhere across body chunks; one frame is held
//! at a time, bounded by `max_event_bytes`.

use super::exception_error;
use crate::sse::{EventDecoder, SseEvent};
use crate::AiError;

/// The prelude (two lengths and their CRC) and the message CRC around every frame.
const PRELUDE: usize = 12;
const MIN_FRAME: usize = PRELUDE + 4;

/// Hands each `event` frame on as an `SseEvent` (`event` = its `:event-type`, `data` = its JSON payload);
/// an `exception` or `error` frame ends the stream with the provider's error.
#[derive(Debug)]
pub struct EventStreamDecoder {
    max_event_bytes: usize,
    /// The frame in progress: its prelude, then all of it.
    held: Vec<u8>,
    /// The length of the frame in progress once its prelude is in (0 before).
    frame_len: usize,
    event: SseEvent,
    /// ConverseStream's last event (`metadata`) was handed on: whatever follows is ignored, as it would be
    /// had the body ended there.
    done: bool,
}

impl EventStreamDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        EventStreamDecoder {
            max_event_bytes,
            held: Vec::new(),
            frame_len: 0,
            event: SseEvent::default(),
            done: false,
        }
    }

    /// Reads the prelude held in `held`: the frame's length, checked against its CRC and the bound.
    fn read_prelude(&mut self) -> Result<(), AiError> {
        let total = be_u32(&self.held, 0);
        let headers = be_u32(&self.held, 4);
        let crc = be_u32(&self.held, 8);
        if self.held.get(..8).map(crc32fast::hash) != Some(crc) {
            return Err(bad("a frame's prelude CRC does not match"));
        }
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let headers = usize::try_from(headers).unwrap_or(usize::MAX);
        if total < MIN_FRAME || headers > total - MIN_FRAME {
            return Err(bad("a frame's lengths are inconsistent"));
        }
        if total > self.max_event_bytes {
            self.held = Vec::new();
            return Err(AiError::TooLarge {
                what: "an upstream stream event",
                limit: self.max_event_bytes,
                status: 502,
            });
        }
        self.frame_len = total;
        Ok(())
    }

    /// Decodes the whole frame held and hands it on.
    fn dispatch(&mut self, each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>) -> Result<(), AiError> {
        let frame = std::mem::take(&mut self.held);
        self.frame_len = 0;
        let result = self.decode(&frame).and_then(|()| each(&self.event));
        self.done = result.is_ok() && self.event.event.as_deref() == Some("metadata");
        // The buffer keeps its capacity for the next frame.
        self.held = frame;
        self.held.clear();
        result
    }

    fn decode(&mut self, frame: &[u8]) -> Result<(), AiError> {
        let crc_at = frame.len().saturating_sub(4);
        let (message, crc) = frame.split_at_checked(crc_at).ok_or_else(|| bad("a frame is too short"))?;
        if crc32fast::hash(message) != be_u32(crc, 0) {
            return Err(bad("a frame's message CRC does not match"));
        }
        let headers_len = usize::try_from(be_u32(frame, 4)).unwrap_or(usize::MAX);
        let rest = message.get(PRELUDE..).unwrap_or_default();
        let (headers, payload) =
            rest.split_at_checked(headers_len).ok_or_else(|| bad("a frame's headers overrun it"))?;
        let headers = Headers::parse(headers)?;
        let payload = std::str::from_utf8(payload).map_err(|_| bad("an event payload is not UTF-8"))?;
        match headers.message_type {
            Some("event") => {
                let kind = headers.event_type.ok_or_else(|| bad("an event frame without :event-type"))?;
                let name = self.event.event.get_or_insert_with(String::new);
                name.clear();
                name.push_str(kind);
                self.event.data.clear();
                self.event.data.push_str(payload);
                Ok(())
            }
            Some("exception") => Err(exception_error(headers.exception_type.unwrap_or("exception"), payload)),
            Some("error") => Err(exception_error(
                headers.error_code.unwrap_or("error"),
                &serde_json::json!({ "message": headers.error_message.unwrap_or_default() }).to_string(),
            )),
            Some(other) => Err(bad(&format!("a frame of unknown :message-type {other:?}"))),
            None => Err(bad("a frame without :message-type")),
        }
    }
}

impl EventDecoder for EventStreamDecoder {
    fn content_type(&self) -> &'static str {
        "application/vnd.amazon.eventstream"
    }

    fn push_events(
        &mut self,
        mut bytes: &[u8],
        each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError> {
        while !bytes.is_empty() && !self.done {
            let wanted = if self.frame_len == 0 { PRELUDE } else { self.frame_len };
            let take = wanted.saturating_sub(self.held.len()).min(bytes.len());
            let (piece, rest) = bytes.split_at(take);
            self.held.extend_from_slice(piece);
            bytes = rest;
            if self.held.len() < wanted {
                break;
            }
            if self.frame_len == 0 {
                self.read_prelude()?;
            } else {
                self.dispatch(each)?;
            }
        }
        Ok(())
    }

    fn finish_events(
        &mut self,
        _each: &mut dyn FnMut(&SseEvent) -> Result<(), AiError>,
    ) -> Result<(), AiError> {
        if self.held.is_empty() {
            Ok(())
        } else {
            self.held.clear();
            self.frame_len = 0;
            Err(AiError::TruncatedStream)
        }
    }
}

/// The headers the decoder reads; the others (`:content-type`, and any of a type it does not use) are skipped.
#[derive(Default)]
struct Headers<'a> {
    message_type: Option<&'a str>,
    event_type: Option<&'a str>,
    exception_type: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}

impl<'a> Headers<'a> {
    /// Each header is `[name length u8][name][type u8][value]`; the value's size follows from its type.
    fn parse(mut bytes: &'a [u8]) -> Result<Headers<'a>, AiError> {
        let mut headers = Headers::default();
        while let Some((&name_len, rest)) = bytes.split_first() {
            let (name, rest) = take(rest, usize::from(name_len))?;
            let (&kind, rest) = rest.split_first().ok_or_else(|| bad("a header without a type"))?;
            let (value, rest) = match kind {
                0 | 1 => (&[][..], rest),
                2 => take(rest, 1)?,
                3 => take(rest, 2)?,
                4 => take(rest, 4)?,
                5 | 8 => take(rest, 8)?,
                6 | 7 => {
                    let (len, rest) = take(rest, 2)?;
                    take(rest, usize::from(u16::from_be_bytes([byte(len, 0), byte(len, 1)])))?
                }
                9 => take(rest, 16)?,
                other => return Err(bad(&format!("a header of unknown type {other}"))),
            };
            bytes = rest;
            if kind != 7 {
                continue;
            }
            let value = std::str::from_utf8(value).map_err(|_| bad("a string header is not UTF-8"))?;
            let slot = match name {
                b":message-type" => &mut headers.message_type,
                b":event-type" => &mut headers.event_type,
                b":exception-type" => &mut headers.exception_type,
                b":error-code" => &mut headers.error_code,
                b":error-message" => &mut headers.error_message,
                _ => continue,
            };
            *slot = Some(value);
        }
        Ok(headers)
    }
}

fn take(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), AiError> {
    bytes.split_at_checked(n).ok_or_else(|| bad("a header runs past the frame's headers"))
}

fn byte(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([byte(bytes, at), byte(bytes, at + 1), byte(bytes, at + 2), byte(bytes, at + 3)])
}

fn bad(what: &str) -> AiError {
    AiError::BadUpstreamResponse(format!("Bedrock event stream: {what}"))
}

/// Frames as Bedrock sends them (string headers, a JSON payload, both CRCs): for tests and mock providers.
/// Header names and values longer than the format allows (255 and 65535 bytes) are cut to fit.
pub mod encode {
    pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut head = Vec::new();
        for (name, value) in headers {
            let name = name.as_bytes().get(..name.len().min(255)).unwrap_or_default();
            let value = value.as_bytes().get(..value.len().min(65_535)).unwrap_or_default();
            head.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            head.extend_from_slice(name);
            head.push(7);
            head.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
            head.extend_from_slice(value);
        }
        let total = u32::try_from(12 + head.len() + payload.len() + 4).unwrap_or(u32::MAX);
        let mut out = total.to_be_bytes().to_vec();
        out.extend_from_slice(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(payload);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    pub fn event(kind: &str, payload: &str) -> Vec<u8> {
        let headers =
            [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")];
        frame(&headers, payload.as_bytes())
    }

    pub fn exception(kind: &str, payload: &str) -> Vec<u8> {
        let headers = [
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ];
        frame(&headers, payload.as_bytes())
    }

    /// A stream written from a test fixture's frame list: each `{"event": kind, "data": {...}}` or
    /// `{"exception": kind, "data": {...}}` becomes a frame, and `"truncate": n` cuts the last n bytes
    /// written so far (a stream broken mid-frame).
    pub fn frames(frames: &[serde_json::Value]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for spec in frames {
            let data = spec.get("data").map(ToString::to_string).unwrap_or_default();
            if let Some(kind) = spec.get("event").and_then(serde_json::Value::as_str) {
                bytes.extend(event(kind, &data));
            } else if let Some(kind) = spec.get("exception").and_then(serde_json::Value::as_str) {
                bytes.extend(exception(kind, &data));
            }
            if let Some(cut) = spec.get("truncate").and_then(serde_json::Value::as_u64) {
                let cut = usize::try_from(cut).unwrap_or(usize::MAX);
                bytes.truncate(bytes.len().saturating_sub(cut));
            }
        }
        bytes
    }
}

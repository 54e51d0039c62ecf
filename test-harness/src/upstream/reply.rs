//! What the upstream answers: the echo, a canned response, or a response streamed in delayed chunks
//! (SSE from a mock AI provider).

use std::time::Duration;

/// One piece of a streamed body, written and flushed after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub delay: Duration,
    pub data: Vec<u8>,
}

/// The upstream's answer to one request, chosen by the responder given to
/// [`EchoUpstream::start_with`](super::EchoUpstream::start_with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 `application/json` describing the request ([`ReceivedRequest::to_json`](super::ReceivedRequest::to_json)).
    Echo,
    /// Sent with a content-length; any framing headers given here (`content-length`,
    /// `transfer-encoding`, `connection`) are replaced by the ones the upstream computes.
    Fixed { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Sent with chunked transfer encoding, each chunk flushed on its own after its delay.
    Stream { status: u16, headers: Vec<(String, String)>, chunks: Vec<Chunk> },
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::Fixed {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Fixed {
            status,
            headers: vec![("content-type".to_owned(), "text/plain; charset=utf-8".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A 200 `text/event-stream`; each item is raw SSE text (`"data: {...}\n\n"`) and the delay before it.
    pub fn sse<I, D>(events: I) -> Reply
    where
        I: IntoIterator<Item = (Duration, D)>,
        D: Into<Vec<u8>>,
    {
        Reply::Stream {
            status: 200,
            headers: vec![
                ("content-type".to_owned(), "text/event-stream".to_owned()),
                ("cache-control".to_owned(), "no-cache".to_owned()),
            ],
            chunks: events.into_iter().map(|(delay, data)| Chunk { delay, data: data.into() }).collect(),
        }
    }

    /// The same answer for the wasmtime host to play to a filter (a stream's chunks become body chunks;
    /// delays are dropped). `None` for [`Reply::Echo`], which needs the request it describes.
    pub fn to_host_response(&self) -> Option<crate::host::Response> {
        let with_headers = |status: u16, headers: &[(String, String)]| {
            headers.iter().fold(crate::host::Response::status(status), |r, (k, v)| r.header(k, v))
        };
        match self {
            Reply::Echo => None,
            Reply::Fixed { status, headers, body } => Some(with_headers(*status, headers).body(body)),
            Reply::Stream { status, headers, chunks } => {
                Some(with_headers(*status, headers).body_chunks(chunks.iter().map(|c| c.data.as_slice())))
            }
        }
    }
}

//! One request and its answer: read the whole body, record the request, ask the responder, and turn its
//! [`Reply`] into a hyper response (sized, or streamed in delayed chunks).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::channel::Channel;
use http_body_util::{BodyExt as _, Either, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::{lock, Chunk, ReceivedRequest, Reply, Shared};

/// Keeps a confused peer from making the upstream buffer without end.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A sized body for echo and fixed replies, a channel fed chunk by chunk for streamed ones.
pub(super) type ReplyBody = Either<Full<Bytes>, Channel<Bytes>>;

pub(super) async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    let (head, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<LengthLimitError>() => {
            return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, format!("upstream: {err}")));
        }
        Err(err) => return Ok(plain(StatusCode::BAD_REQUEST, format!("upstream: bad request body: {err}"))),
    };
    let request = ReceivedRequest {
        method: head.method.as_str().to_owned(),
        path: head.uri.to_string(),
        headers: head
            .headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect(),
        body: body.to_vec(),
    };
    // Recorded before answering, so once a client has its response the request is in `received()`.
    lock(&shared.received).push(request.clone());
    let responder = Arc::clone(&shared.responder);
    // Responders may sleep or block (tests hold requests open), which must not stall the runtime's thread.
    let answered = tokio::task::spawn_blocking(move || {
        let reply = responder(&request);
        (reply, request)
    })
    .await;
    Ok(match answered {
        Ok((reply, request)) => response(reply, &request),
        Err(err) => {
            plain(StatusCode::INTERNAL_SERVER_ERROR, format!("upstream: the responder failed: {err}"))
        }
    })
}

fn response(reply: Reply, request: &ReceivedRequest) -> Response<ReplyBody> {
    let (status, headers, body) = match reply {
        Reply::Echo => return response(Reply::json(200, &request.to_json()), request),
        Reply::Fixed { status, headers, body } => {
            (status, headers, Either::Left(Full::new(Bytes::from(body))))
        }
        Reply::Stream { status, headers, chunks } => (status, headers, Either::Right(stream(chunks))),
    };
    let mut builder = Response::builder().status(status);
    // Framing is hyper's to set from the body: a content-length for sized replies, chunked for streams.
    let framing = ["content-length", "transfer-encoding", "connection"];
    for (name, value) in
        headers.iter().filter(|(name, _)| !framing.iter().any(|f| name.eq_ignore_ascii_case(f)))
    {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(body).unwrap_or_else(|err| {
        eprintln!("upstream: cannot send the scripted reply: {err}");
        plain(StatusCode::INTERNAL_SERVER_ERROR, format!("upstream: invalid scripted reply: {err}"))
    })
}

/// A body that yields each chunk after its delay; hyper writes and flushes each as it arrives.
fn stream(chunks: Vec<Chunk>) -> Channel<Bytes> {
    let (mut sender, body) = Channel::new(1);
    tokio::spawn(async move {
        for chunk in chunks {
            tokio::time::sleep(chunk.delay).await;
            // An empty piece only contributes its delay: there is nothing to send.
            if !chunk.data.is_empty() && sender.send_data(Bytes::from(chunk.data)).await.is_err() {
                // The client went away (or the request was a HEAD, whose body is never read).
                return;
            }
        }
    });
    body
}

fn plain(status: StatusCode, message: String) -> Response<ReplyBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(message))));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Resets, broken pipes and half-sent requests are how connections normally end here; the rest are worth a
/// line on stderr.
pub(super) fn peer_went_away(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            return matches!(io.kind(), BrokenPipe | ConnectionReset | ConnectionAborted);
        }
        source = cause.source();
    }
    false
}

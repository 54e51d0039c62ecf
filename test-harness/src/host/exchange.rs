//! Driving one request through a VM: the one-shot [`Dispatch`] (`vm.send(req).respond_with(resp).run()`)
//! and the step-by-step [`Stream`] for tests that interleave calls, ticks and stream data.

use std::time::Duration;

use super::abi::Pairs;
use super::error::{HostError, HostResult};
use super::flow::Dir;
use super::message::{
    split_pseudo, to_pairs, DownstreamResponse, Exchange, Request, Response, UpstreamRequest,
};
use super::shared::lock;
use super::state::{Stage, StreamState};
use super::vm::Vm;

/// How far `run()` lets the virtual clock jump while a stream waits (for a call timeout, say).
const MAX_WAIT: Duration = Duration::from_secs(600);

impl Vm {
    /// Starts a one-shot exchange; finish it with [`Dispatch::run`].
    pub fn send(&mut self, request: Request) -> Dispatch<'_> {
        Dispatch { vm: self, request, response: None }
    }

    /// Opens a stream (creates its context) for step-by-step driving; nothing is sent yet.
    pub fn stream(&mut self, request: Request) -> HostResult<Stream<'_>> {
        let ctx = self.open_stream(&request)?;
        Ok(Stream { vm: self, ctx, request })
    }

    /// Takes up again a stream opened earlier with [`Vm::stream`] (its context `ctx`, its `request`), so a
    /// test can keep several streams open at once and advance them in any order.
    pub fn resume_stream(&mut self, ctx: u32, request: Request) -> Stream<'_> {
        Stream { vm: self, ctx, request }
    }

    fn open_stream(&mut self, request: &Request) -> HostResult<u32> {
        let state = self.store.data_mut();
        let ctx = state.next_context_id;
        state.next_context_id += 1;
        let mut stream = StreamState { log_start: state.logs.len(), ..StreamState::default() };
        for (path, value) in &request.properties {
            stream.properties.set(path, value.clone().into_bytes());
        }
        state.streams.insert(ctx, stream);
        let root = state.root_context_id;
        self.invoke("proxy_on_context_create", &[ctx as i32, root as i32])?;
        Ok(ctx)
    }

    /// What happened to a stream so far (or in full, once its context was deleted).
    pub fn exchange(&self, context_id: u32) -> Option<Exchange> {
        self.finished.get(&context_id).cloned().or_else(|| {
            self.store.data().streams.contains_key(&context_id).then(|| self.snapshot(context_id, false))
        })
    }

    pub(crate) fn snapshot(&self, ctx: u32, complete: bool) -> Exchange {
        let state = self.store.data();
        let Some(stream) = state.streams.get(&ctx) else {
            return Exchange { context_id: ctx, ..Exchange::default() };
        };
        let calls = lock(&state.shared)
            .calls
            .iter()
            .filter(|c| c.vm == state.index && c.context_id == ctx)
            .cloned()
            .collect();
        let request = &stream.request;
        let upstream = request.out_ended.then(|| {
            let (pseudo, headers) = split_pseudo(request.out_headers.as_deref().unwrap_or_default());
            let get = |name: &str| {
                pseudo.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
            };
            UpstreamRequest {
                method: get(":method"),
                path: get(":path"),
                authority: get(":authority"),
                headers: fix_content_length(headers, request.out_body.len()),
                body: request.out_body.clone().into(),
                trailers: super::message::to_headers(&request.out_trailers),
            }
        });
        let response = &stream.response;
        let (pseudo, headers) = split_pseudo(response.out_headers.as_deref().unwrap_or_default());
        let status =
            pseudo.iter().find(|(k, _)| k == ":status").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let downstream = DownstreamResponse {
            status: if stream.reset { 0 } else { status },
            headers: if response.out_ended {
                fix_content_length(headers, response.out_body.len())
            } else {
                headers
            },
            body: response.out_body.clone().into(),
            trailers: super::message::to_headers(&response.out_trailers),
            reset: stream.reset,
        };
        Exchange {
            context_id: ctx,
            upstream,
            downstream,
            local_reply_details: stream.local_reply_details.clone(),
            complete,
            calls,
            logs: state.logs.get(stream.log_start..).unwrap_or_default().to_vec(),
            filter_state: stream
                .filter_state
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
        }
    }
}

/// A replaced body makes the original `content-length` wrong; report what was actually sent.
fn fix_content_length(mut headers: super::message::Headers, len: usize) -> super::message::Headers {
    for (k, v) in &mut headers {
        if k.eq_ignore_ascii_case("content-length") {
            *v = len.to_string();
        }
    }
    headers
}

/// A one-shot exchange being configured. The upstream response is played only if the request
/// reaches the upstream; while the stream waits, the virtual clock jumps to the next due event
/// (a scripted answer, a call timeout, a tick), up to ten minutes.
#[must_use = "call .run() to send the request"]
pub struct Dispatch<'a> {
    vm: &'a mut Vm,
    request: Request,
    response: Option<Response>,
}

impl Dispatch<'_> {
    /// What the upstream answers (default: 200 with no body).
    pub fn respond_with(mut self, response: Response) -> Self {
        self.response = Some(response);
        self
    }

    /// Sends the request, plays the upstream, and returns what both sides saw.
    pub fn run(self) -> HostResult<Exchange> {
        let mut stream = self.vm.stream(self.request)?;
        stream.send_request()?;
        stream.finish(self.response.unwrap_or_default())
    }
}

/// A stream driven step by step. Borrowing the VM, it also forwards the VM operations a test
/// needs mid-stream ([`Stream::vm`] gives the rest).
pub struct Stream<'a> {
    vm: &'a mut Vm,
    ctx: u32,
    request: Request,
}

impl Stream<'_> {
    pub fn context_id(&self) -> u32 {
        self.ctx
    }

    pub fn vm(&mut self) -> &mut Vm {
        self.vm
    }

    /// The request's headers (with `:method`, `:path`, `:authority`, `:scheme`); end of stream
    /// when the request has neither body nor trailers.
    pub fn send_request_headers(&mut self) -> HostResult<()> {
        let r = &self.request;
        let mut headers: Pairs = vec![
            (b":method".to_vec(), r.method.clone().into_bytes()),
            (b":path".to_vec(), r.path.clone().into_bytes()),
            (b":authority".to_vec(), r.authority.clone().into_bytes()),
            (b":scheme".to_vec(), r.scheme.clone().into_bytes()),
        ];
        headers.extend(to_pairs(&r.headers));
        let end = r.body.is_empty() && r.trailers.is_empty();
        self.vm.on_headers(self.ctx, Dir::Request, headers, end)
    }

    pub fn send_request_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> HostResult<()> {
        self.vm.on_body(self.ctx, Dir::Request, chunk.as_ref(), end_of_stream)
    }

    pub fn send_request_trailers(&mut self, trailers: &super::message::Headers) -> HostResult<()> {
        self.vm.on_trailers(self.ctx, Dir::Request, to_pairs(trailers))
    }

    /// The whole request: headers, each body chunk (the last one ends the stream unless there are
    /// trailers), then trailers.
    pub fn send_request(&mut self) -> HostResult<()> {
        self.send_request_headers()?;
        let chunks: Vec<Vec<u8>> =
            self.request.body.0.iter().map(|c| c.0.clone()).filter(|c| !c.is_empty()).collect();
        let trailers = self.request.trailers.clone();
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            self.send_request_body(chunk, i + 1 == count && trailers.is_empty())?;
        }
        if !trailers.is_empty() {
            self.send_request_trailers(&trailers)?;
        }
        Ok(())
    }

    /// Upstream response headers; ignored if the filter already replied locally or reset.
    pub fn send_response_headers(&mut self, response: &Response, end_of_stream: bool) -> HostResult<()> {
        if !self.upstream_may_answer() {
            return Ok(());
        }
        let mut headers: Pairs = vec![(b":status".to_vec(), response.status.to_string().into_bytes())];
        headers.extend(to_pairs(&response.headers));
        self.vm.on_headers(self.ctx, Dir::Response, headers, end_of_stream)
    }

    pub fn send_response_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> HostResult<()> {
        if !self.upstream_may_answer() {
            return Ok(());
        }
        self.vm.on_body(self.ctx, Dir::Response, chunk.as_ref(), end_of_stream)
    }

    pub fn send_response_trailers(&mut self, trailers: &super::message::Headers) -> HostResult<()> {
        if !self.upstream_may_answer() {
            return Ok(());
        }
        self.vm.on_trailers(self.ctx, Dir::Response, to_pairs(trailers))
    }

    /// The whole upstream response, chunk by chunk.
    pub fn send_response(&mut self, response: &Response) -> HostResult<()> {
        let chunks: Vec<Vec<u8>> =
            response.body.0.iter().map(|c| c.0.clone()).filter(|c| !c.is_empty()).collect();
        let count = chunks.len();
        self.send_response_headers(response, count == 0 && response.trailers.is_empty())?;
        for (i, chunk) in chunks.into_iter().enumerate() {
            self.send_response_body(chunk, i + 1 == count && response.trailers.is_empty())?;
        }
        if !response.trailers.is_empty() {
            self.send_response_trailers(&response.trailers)?;
        }
        Ok(())
    }

    fn upstream_may_answer(&mut self) -> bool {
        self.vm
            .store
            .data()
            .streams
            .get(&self.ctx)
            .is_some_and(|s| !s.reset && !s.replying_locally && s.local_reply_details.is_none())
    }

    /// The request was fully forwarded upstream.
    pub fn reached_upstream(&self) -> bool {
        self.state().is_some_and(|s| s.request.out_ended)
    }

    /// The filter is holding the request (headers, body or trailers stopped).
    pub fn request_paused(&self) -> bool {
        self.state().is_some_and(|s| {
            matches!(s.request.stage, Stage::HeadersStopped | Stage::BodyStopped | Stage::TrailersStopped)
        })
    }

    /// The filter is holding the response.
    pub fn response_paused(&self) -> bool {
        self.state().is_some_and(|s| {
            matches!(s.response.stage, Stage::HeadersStopped | Stage::BodyStopped | Stage::TrailersStopped)
        })
    }

    /// The context has been torn down (`proxy_on_log`, `proxy_on_done`, `proxy_on_delete`).
    pub fn is_complete(&self) -> bool {
        self.vm.finished.contains_key(&self.ctx)
    }

    fn state(&self) -> Option<&StreamState> {
        self.vm.store.data().streams.get(&self.ctx)
    }

    /// What happened so far.
    pub fn exchange(&self) -> Exchange {
        self.vm.exchange(self.ctx).unwrap_or_default()
    }

    pub fn complete_http_call(&mut self, token: u32, response: Response) -> HostResult<()> {
        self.vm.complete_http_call(token, response)
    }

    pub fn advance(&mut self, by: Duration) -> HostResult<()> {
        self.vm.advance(by)
    }

    /// Plays `response` once the request reaches the upstream, letting the virtual clock run to
    /// due events while the stream waits; errors if it cannot finish.
    pub fn finish(mut self, response: Response) -> HostResult<Exchange> {
        let mut waited = Duration::ZERO;
        let mut played = false;
        while !self.is_complete() {
            if self.reached_upstream() && !played && self.upstream_may_answer() {
                played = true;
                self.send_response(&response)?;
                continue;
            }
            let now = self.vm.now_nanos();
            match self.vm.next_event_at() {
                Some(at) if waited + Duration::from_nanos(at.saturating_sub(now)) <= MAX_WAIT => {
                    let step = Duration::from_nanos(at.saturating_sub(now));
                    waited += step;
                    self.vm.advance(step)?;
                }
                _ => return Err(self.stalled()),
            }
        }
        Ok(self.exchange())
    }

    fn stalled(&self) -> HostError {
        let reason = match self.state() {
            None => "the stream is gone".to_string(),
            Some(s) if self.request_paused() => {
                format!("the filter holds the request ({:?}) and nothing is due", s.request.stage)
            }
            Some(s) if self.response_paused() => {
                format!("the filter holds the response ({:?}) and nothing is due", s.response.stage)
            }
            Some(s) => {
                format!("request {:?}, response {:?}, and nothing is due", s.request.stage, s.response.stage)
            }
        };
        HostError::Stalled { context_id: self.ctx, reason, logs: self.vm.log_tail(20) }
    }
}

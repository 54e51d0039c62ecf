//! The HTTP stream state machine, modelled on Envoy's filter manager for a single filter:
//! headers returning Pause hold the headers while later body and trailers still reach the guest
//! (StopIteration), body callbacks returning Pause buffer the body (the guest sees it grow), a body that went
//! on is gone (a trailers callback finds no body buffer), `proxy_continue_stream` resumes, a local reply
//! replaces the response and ends the stream, and a finished stream is logged, done and deleted.

use super::abi::{len_u32, Pairs, ACTION_CONTINUE};
use super::error::HostResult;
use super::state::{Direction, LocalReply, Stage, StreamState};
use super::vm::Vm;

/// Which half of the stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

impl Dir {
    fn callback(self, part: &str) -> String {
        let side = if self == Dir::Request { "request" } else { "response" };
        format!("proxy_on_{side}_{part}")
    }
}

fn direction(stream: &mut StreamState, dir: Dir) -> &mut Direction {
    match dir {
        Dir::Request => &mut stream.request,
        Dir::Response => &mut stream.response,
    }
}

impl Vm {
    fn dir_mut(&mut self, ctx: u32, dir: Dir) -> Option<&mut Direction> {
        self.store.data_mut().streams.get_mut(&ctx).map(|s| direction(s, dir))
    }

    /// False once the stream is gone, reset, or the direction was abandoned by a local reply.
    fn accepts(&mut self, ctx: u32, dir: Dir) -> bool {
        let Some(stream) = self.store.data_mut().streams.get_mut(&ctx) else {
            return false;
        };
        let abandoned =
            dir == Dir::Request && (stream.replying_locally || stream.local_reply_details.is_some());
        !stream.reset && !abandoned && direction(stream, dir).stage != Stage::Done
    }

    pub(crate) fn on_headers(&mut self, ctx: u32, dir: Dir, headers: Pairs, end: bool) -> HostResult<()> {
        if !self.accepts(ctx, dir) {
            return Ok(());
        }
        let n = len_u32(headers.len()) as i32;
        if let Some(d) = self.dir_mut(ctx, dir) {
            d.headers = headers;
            d.input_ended = end;
            d.stage = Stage::Iterating;
        }
        let action = self.invoke(&dir.callback("headers"), &[ctx as i32, n, i32::from(end)])?;
        self.after_callback(ctx, dir, Stage::HeadersStopped, action)
    }

    pub(crate) fn on_body(&mut self, ctx: u32, dir: Dir, chunk: &[u8], end: bool) -> HostResult<()> {
        if !self.accepts(ctx, dir) {
            return Ok(());
        }
        let Some(d) = self.dir_mut(ctx, dir) else {
            return Ok(());
        };
        // Envoy's StopIteration from headers still hands later data to this filter; Continue from the
        // body callback then releases the held headers together with the body.
        let headers_held = d.stage == Stage::HeadersStopped;
        d.body_forwarded = false;
        d.body.extend_from_slice(chunk);
        d.input_ended = end;
        let size = len_u32(d.body.len()) as i32;
        let action = self.invoke(&dir.callback("body"), &[ctx as i32, size, i32::from(end)])?;
        if headers_held {
            let continued = action.is_none_or(|a| a == ACTION_CONTINUE);
            if let Some(stream) = self.store.data_mut().streams.get_mut(&ctx) {
                let interrupted = stream.local_reply.is_some() || stream.reset;
                let d = direction(stream, dir);
                if continued && !interrupted && d.stage == Stage::HeadersStopped {
                    release_headers_and_body(d);
                }
            }
            return self.poll();
        }
        self.after_callback(ctx, dir, Stage::BodyStopped, action)
    }

    pub(crate) fn on_trailers(&mut self, ctx: u32, dir: Dir, trailers: Pairs) -> HostResult<()> {
        if !self.accepts(ctx, dir) {
            return Ok(());
        }
        let Some(d) = self.dir_mut(ctx, dir) else {
            return Ok(());
        };
        // As with body, Envoy hands trailers to a filter whose headers stopped (StopIteration); Continue
        // then sends the held headers, the buffered body and the trailers together.
        let n = len_u32(trailers.len()) as i32;
        d.trailers = trailers;
        d.input_ended = true;
        let action = self.invoke(&dir.callback("trailers"), &[ctx as i32, n])?;
        self.after_callback(ctx, dir, Stage::TrailersStopped, action)
    }

    /// Continue forwards what the callback was about; anything else stops at `stopped`. A local
    /// reply or reset during the callback overrides its result, as proxy-wasm-cpp-host does.
    fn after_callback(&mut self, ctx: u32, dir: Dir, stopped: Stage, action: Option<i32>) -> HostResult<()> {
        let Some(stream) = self.store.data_mut().streams.get_mut(&ctx) else {
            return Ok(());
        };
        let interrupted = stream.local_reply.is_some() || stream.reset;
        let d = direction(stream, dir);
        if interrupted || action.is_some_and(|a| a != ACTION_CONTINUE) {
            d.stage = stopped;
        } else {
            forward(d, stopped);
        }
        self.poll()
    }

    /// Acts on what the guest asked for since the last look: resets, local replies, resumes;
    /// then finishes streams that are complete. Returns whether anything happened.
    pub(crate) fn progress_streams(&mut self) -> HostResult<bool> {
        let ids: Vec<u32> = self.store.data().streams.keys().copied().collect();
        let mut progressed = false;
        for ctx in ids {
            progressed |= self.progress_stream(ctx)?;
        }
        Ok(progressed)
    }

    fn progress_stream(&mut self, ctx: u32) -> HostResult<bool> {
        let state = self.store.data_mut();
        let done_requested = state.done_requests.contains(&ctx);
        let Some(stream) = state.streams.get_mut(&ctx) else {
            return Ok(false);
        };
        if stream.finishing {
            if stream.done_called || !done_requested {
                return Ok(false);
            }
            stream.done_called = true;
            self.delete_stream(ctx)?;
            return Ok(true);
        }
        if stream.reset {
            stream.local_reply = None;
            self.finish_stream(ctx)?;
            return Ok(true);
        }
        if let Some(reply) = stream.local_reply.take() {
            self.apply_local_reply(ctx, reply)?;
            return Ok(true);
        }
        for dir in [Dir::Request, Dir::Response] {
            let d = direction(stream, dir);
            if d.resume {
                d.resume = false;
                self.resume(ctx, dir)?;
                return Ok(true);
            }
        }
        let complete = (stream.request.stage == Stage::Done || stream.local_reply_details.is_some())
            && stream.response.out_ended;
        if complete {
            self.finish_stream(ctx)?;
        }
        Ok(complete)
    }

    /// `proxy_continue_stream`: forward what was held, then deliver what queued up meanwhile.
    fn resume(&mut self, ctx: u32, dir: Dir) -> HostResult<()> {
        let Some(d) = self.dir_mut(ctx, dir) else {
            return Ok(());
        };
        match d.stage {
            Stage::HeadersStopped => release_headers_and_body(d),
            Stage::BodyStopped | Stage::TrailersStopped => {
                let stage = d.stage;
                forward(d, stage);
            }
            Stage::NotStarted | Stage::Iterating | Stage::Done => {}
        }
        Ok(())
    }

    /// Sent while the request was being processed, the reply goes through the guest's response
    /// callbacks (Envoy runs local replies through the encoder chain); sent while the response was
    /// being processed, it replaces the response directly; after headers went downstream, it resets.
    fn apply_local_reply(&mut self, ctx: u32, reply: LocalReply) -> HostResult<()> {
        let Some(stream) = self.store.data_mut().streams.get_mut(&ctx) else {
            return Ok(());
        };
        stream.local_reply_details = Some(reply.details.clone());
        if stream.response.out_headers.is_some() {
            stream.reset = true;
            return Ok(());
        }
        let (headers, body) = local_reply_message(&reply);
        if stream.response.stage != Stage::NotStarted || stream.replying_locally {
            let r = &mut stream.response;
            r.headers = headers.clone();
            r.out_headers = Some(headers);
            r.out_body = body;
            r.out_trailers.clear();
            r.out_ended = true;
            r.stage = Stage::Done;
            return Ok(());
        }
        stream.replying_locally = true;
        stream.response = Direction::default();
        self.on_headers(ctx, Dir::Response, headers, body.is_empty())?;
        if !body.is_empty() {
            self.on_body(ctx, Dir::Response, &body, true)?;
        }
        Ok(())
    }

    /// Both directions are over: `proxy_on_log`, then `proxy_on_done`; delete now unless the guest
    /// wants to finish later with `proxy_done`.
    fn finish_stream(&mut self, ctx: u32) -> HostResult<()> {
        if let Some(stream) = self.store.data_mut().streams.get_mut(&ctx) {
            stream.finishing = true;
        }
        self.invoke("proxy_on_log", &[ctx as i32])?;
        let done = self.invoke("proxy_on_done", &[ctx as i32])?;
        if done != Some(0) {
            if let Some(stream) = self.store.data_mut().streams.get_mut(&ctx) {
                stream.done_called = true;
            }
            self.delete_stream(ctx)?;
        }
        Ok(())
    }

    fn delete_stream(&mut self, ctx: u32) -> HostResult<()> {
        let exchange = self.snapshot(ctx, true);
        self.finished.insert(ctx, exchange);
        self.invoke("proxy_on_delete", &[ctx as i32])?;
        let state = self.store.data_mut();
        state.streams.remove(&ctx);
        state.pending_calls.retain(|_, call| call.context_id != ctx);
        state.done_requests.retain(|id| *id != ctx);
        if state.effective_context == ctx {
            state.effective_context = state.root_context_id;
        }
        Ok(())
    }
}

/// Sends the held headers and whatever body reached the filter while they were held.
fn release_headers_and_body(d: &mut Direction) {
    d.out_headers = Some(d.headers.clone());
    forward(d, Stage::BodyStopped);
}

/// Sends on what a callback with the given stop point covered.
fn forward(d: &mut Direction, point: Stage) {
    match point {
        Stage::HeadersStopped => {
            d.out_headers = Some(d.headers.clone());
            d.stage = Stage::Iterating;
            if d.input_ended {
                end(d);
            }
        }
        Stage::BodyStopped => {
            d.out_body.append(&mut d.body);
            d.body_forwarded = true;
            d.stage = Stage::Iterating;
            if d.input_ended {
                end(d);
            }
        }
        Stage::TrailersStopped => {
            if d.out_headers.is_none() {
                d.out_headers = Some(d.headers.clone());
            }
            d.out_body.append(&mut d.body);
            d.out_trailers = d.trailers.clone();
            end(d);
        }
        Stage::NotStarted | Stage::Iterating | Stage::Done => {}
    }
}

fn end(d: &mut Direction) {
    d.out_ended = true;
    d.stage = Stage::Done;
}

/// The response Envoy builds for `sendLocalReply`: status, the guest's headers, and a text body;
/// for gRPC (`grpc_status >= 0`) a trailers-only style reply carrying grpc-status and grpc-message.
fn local_reply_message(reply: &LocalReply) -> (Pairs, Vec<u8>) {
    let mut headers: Pairs = Vec::new();
    let status = if reply.grpc_status >= 0 { 200 } else { reply.status };
    headers.push((b":status".to_vec(), status.to_string().into_bytes()));
    headers.extend(reply.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())));
    let has = |headers: &Pairs, name: &[u8]| headers.iter().any(|(k, _)| k == name);
    if reply.grpc_status >= 0 {
        headers.push((b"content-type".to_vec(), b"application/grpc".to_vec()));
        headers.push((b"grpc-status".to_vec(), reply.grpc_status.to_string().into_bytes()));
        if !reply.body.is_empty() {
            headers.push((b"grpc-message".to_vec(), reply.body.clone()));
        }
        return (headers, Vec::new());
    }
    if !reply.body.is_empty() {
        if !has(&headers, b"content-type") {
            headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
        }
        headers.push((b"content-length".to_vec(), reply.body.len().to_string().into_bytes()));
    }
    (headers, reply.body.clone())
}

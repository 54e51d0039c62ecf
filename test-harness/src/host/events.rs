//! Everything that happens to a VM besides HTTP data: the virtual clock and ticks, answers to
//! outbound calls (scripted, from the test, or timeouts), and shared-queue notifications.
//! [`Vm::poll`] delivers whatever is due now; [`Vm::advance`] walks the clock through due events in order.

use std::time::Duration;

use super::abi::{len_u32, GRPC_DEADLINE_EXCEEDED};
use super::calls::{CallKind, GrpcReply, PendingCall, Reply};
use super::error::{HostError, HostResult};
use super::message::{to_pairs, Response};
use super::shared::lock;
use super::state::{CallResponse, GrpcScratch};
use super::vm::Vm;

/// Guards against a guest that keeps re-arming work at the same instant.
const MAX_ROUNDS: usize = 10_000;

impl Vm {
    /// Delivers everything already due: queue notifications, call answers and timeouts, ticks,
    /// and stream resumes requested with `proxy_continue_stream`.
    pub fn poll(&mut self) -> HostResult<()> {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = self.deliver_queue_ready()?;
            progressed |= self.deliver_due_call()?;
            progressed |= self.fire_due_tick()?;
            progressed |= self.progress_streams()?;
            if !progressed {
                return Ok(());
            }
        }
        Err(HostError::Usage(format!("events kept firing without the clock moving\n{}", self.log_tail(20))))
    }

    /// Advances the shared virtual clock, firing this VM's ticks, call answers and timeouts in
    /// time order (the clock reads each event's time while it runs). Other VMs of the host catch
    /// up on their due events the next time they are driven or polled.
    pub fn advance(&mut self, by: Duration) -> HostResult<()> {
        let target = self.now_nanos().saturating_add(by.as_nanos() as u64);
        self.poll()?;
        while let Some(at) = self.next_event_at().filter(|at| *at <= target) {
            self.set_now(at);
            self.poll()?;
        }
        self.set_now(target);
        self.poll()
    }

    pub(crate) fn now_nanos(&self) -> u64 {
        self.store.data().now_nanos()
    }

    fn set_now(&mut self, nanos: u64) {
        let mut shared = lock(&self.store.data().shared);
        shared.now_nanos = shared.now_nanos.max(nanos);
    }

    /// The earliest future time at which something happens in this VM.
    pub(crate) fn next_event_at(&self) -> Option<u64> {
        let state = self.store.data();
        let calls = state.pending_calls.values().filter_map(due_at);
        calls.chain(state.next_tick_nanos).min()
    }

    /// Answers a pending `http_call` (or gRPC call) now.
    pub fn complete_http_call(&mut self, token: u32, response: Response) -> HostResult<()> {
        self.answer(token, Some(Reply::Http(response)))
    }

    /// Fails a pending call as a reset/timeout would: no headers, no body.
    pub fn fail_call(&mut self, token: u32) -> HostResult<()> {
        self.answer(token, None)
    }

    /// Answers a pending gRPC call or stream now.
    pub fn complete_grpc_call(&mut self, token: u32, reply: GrpcReply) -> HostResult<()> {
        self.answer(token, Some(Reply::Grpc(reply)))
    }

    fn answer(&mut self, token: u32, reply: Option<Reply>) -> HostResult<()> {
        let call = self.store.data_mut().pending_calls.remove(&token);
        let call = call.ok_or_else(|| {
            HostError::Usage(format!("no pending call with token {token} in VM {}", self.index()))
        })?;
        self.deliver(&call, reply)?;
        self.poll()
    }

    fn deliver_due_call(&mut self) -> HostResult<bool> {
        let now = self.now_nanos();
        let state = self.store.data();
        let due = state
            .pending_calls
            .values()
            .filter(|c| due_at(c).is_some_and(|at| at <= now))
            .min_by_key(|c| due_at(c));
        let Some(call) = due.cloned() else {
            return Ok(false);
        };
        self.store.data_mut().pending_calls.remove(&call.token);
        let reply = match &call.scheduled {
            Some((at, reply)) if call.deadline.is_none_or(|d| *at <= d) => Some(reply.clone()),
            _ => None,
        };
        self.deliver(&call, reply)?;
        Ok(true)
    }

    /// Calls owned by a context that is gone are dropped, as Envoy cancels them with the context.
    fn deliver(&mut self, call: &PendingCall, reply: Option<Reply>) -> HostResult<()> {
        let state = self.store.data();
        if call.context_id != state.root_context_id && !state.streams.contains_key(&call.context_id) {
            return Ok(());
        }
        match (call.kind, reply) {
            (CallKind::Http, Some(Reply::Http(response))) => self.deliver_http(call, Some(&response)),
            (CallKind::Http, _) => self.deliver_http(call, None),
            (_, Some(Reply::Grpc(reply))) => self.deliver_grpc(call, &reply),
            (_, _) => self.deliver_grpc(call, &GrpcReply::error(GRPC_DEADLINE_EXCEEDED, "deadline exceeded")),
        }
    }

    fn deliver_http(&mut self, call: &PendingCall, response: Option<&Response>) -> HostResult<()> {
        let scratch = match response {
            Some(r) => {
                let mut headers = vec![(b":status".to_vec(), r.status.to_string().into_bytes())];
                headers.extend(to_pairs(&r.headers));
                CallResponse { headers, body: r.body.concat(), trailers: to_pairs(&r.trailers) }
            }
            None => CallResponse::default(),
        };
        let args = [
            call.context_id as i32,
            call.token as i32,
            len_u32(scratch.headers.len()) as i32,
            len_u32(scratch.body.len()) as i32,
            len_u32(scratch.trailers.len()) as i32,
        ];
        self.store.data_mut().call_response = Some(scratch);
        let result = self.invoke("proxy_on_http_call_response", &args);
        self.store.data_mut().call_response = None;
        result.map(|_| ())
    }

    /// Unary calls get `on_grpc_receive` on success or `on_grpc_close` on failure, as Envoy does;
    /// streams get every part in order and then `on_grpc_close`.
    fn deliver_grpc(&mut self, call: &PendingCall, reply: &GrpcReply) -> HostResult<()> {
        let (ctx, token) = (call.context_id as i32, call.token as i32);
        let state = self.store.data_mut();
        state.grpc = GrpcScratch {
            initial_metadata: to_pairs(&reply.initial_metadata),
            trailing_metadata: to_pairs(&reply.trailing_metadata),
            message: Vec::new(),
            status: reply.status,
            status_message: reply.status_message.clone(),
        };
        let result = (|| {
            if call.kind == CallKind::Grpc {
                match reply.messages.first() {
                    Some(message) if reply.status == 0 => {
                        self.store.data_mut().grpc.message = message.0.clone();
                        self.invoke("proxy_on_grpc_receive", &[ctx, token, len_u32(message.len()) as i32])?;
                    }
                    _ => {
                        self.invoke("proxy_on_grpc_close", &[ctx, token, reply.status as i32])?;
                    }
                }
                return Ok(());
            }
            if !reply.initial_metadata.is_empty() {
                let n = len_u32(reply.initial_metadata.len()) as i32;
                self.invoke("proxy_on_grpc_receive_initial_metadata", &[ctx, token, n])?;
            }
            for message in &reply.messages {
                self.store.data_mut().grpc.message = message.0.clone();
                self.invoke("proxy_on_grpc_receive", &[ctx, token, len_u32(message.len()) as i32])?;
            }
            if !reply.trailing_metadata.is_empty() {
                let n = len_u32(reply.trailing_metadata.len()) as i32;
                self.invoke("proxy_on_grpc_receive_trailing_metadata", &[ctx, token, n])?;
            }
            self.invoke("proxy_on_grpc_close", &[ctx, token, reply.status as i32])?;
            Ok(())
        })();
        self.store.data_mut().grpc = GrpcScratch::default();
        result
    }

    fn deliver_queue_ready(&mut self) -> HostResult<bool> {
        let index = self.index();
        let ready = lock(&self.store.data().shared).take_ready(index);
        let delivered = !ready.is_empty();
        for r in ready {
            let state = self.store.data();
            if r.context_id == state.root_context_id || state.streams.contains_key(&r.context_id) {
                self.invoke("proxy_on_queue_ready", &[r.context_id as i32, r.queue_id as i32])?;
            }
        }
        Ok(delivered)
    }

    fn fire_due_tick(&mut self) -> HostResult<bool> {
        let now = self.now_nanos();
        let state = self.store.data_mut();
        let (Some(next), Some(period)) = (state.next_tick_nanos, state.tick_period_nanos) else {
            return Ok(false);
        };
        if next > now {
            return Ok(false);
        }
        // Envoy re-arms its tick timer from the moment it fired: a VM that was not driven for a while
        // gets one late tick, not a burst of the missed ones.
        state.next_tick_nanos = Some(now.saturating_add(period));
        let root = state.root_context_id as i32;
        self.invoke("proxy_on_tick", &[root])?;
        Ok(true)
    }
}

/// When a pending call next needs attention: its scripted answer or its deadline, whichever is first.
fn due_at(call: &PendingCall) -> Option<u64> {
    let answer = call.scheduled.as_ref().map(|(at, _)| *at);
    match (answer, call.deadline) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    }
}

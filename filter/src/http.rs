use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use tollgate_core::{
    BodyVerdict, CallOutcome, Callout, HeaderEdits, Headers, LocalReply, RequestHead, ResponseHead, Verdict,
};
use tollgate_pipeline::trace::TRACE_PROPERTY;
use tollgate_pipeline::{BackgroundCall, Pipeline, Stream};

use crate::abi;
use crate::callout;
use crate::header_map;
use crate::host_ports::HostPorts;

/// One per HTTP stream. Reads each phase's input from the host, asks the pipeline, applies the verdict.
pub struct TollgateHttp {
    pipeline: Rc<Pipeline>,
    ports: Rc<HostPorts>,
    stream: Stream,
    /// The head of the current direction is held back (`Verdict::AwaitBody`) until the body phase decides.
    head_held: bool,
    /// A local reply was sent: nothing more of this stream is ours to touch.
    replied: bool,
    /// The response head ended its stream: there is no body buffer for a replacement body to go into.
    response_head_ended: bool,
    /// A call is in flight that the request waits for.
    call_pending: Option<Waiting>,
    /// The request head carried end-of-stream (no body follows).
    request_headers_ended: bool,
    /// Body that arrived while a call was pending: the size Envoy holds and whether it was the last.
    body_during_call: Option<(usize, bool)>,
    /// Calls that outlive the stream (usage reports), handed to the root context to make.
    outbox: Outbox,
}

/// Calls the root context makes on the streams' behalf; a stream's own calls are cancelled when it ends.
pub type Outbox = Rc<std::cell::RefCell<Vec<BackgroundCall>>>;

/// What waits for a call's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// The request head (`Verdict::Call`).
    Head,
    /// The whole request body Envoy holds, `size` bytes (`BodyVerdict::Call`).
    Body { size: usize },
}

impl TollgateHttp {
    pub fn new(pipeline: Rc<Pipeline>, ports: Rc<HostPorts>, outbox: Outbox) -> Self {
        let stream = pipeline.stream();
        TollgateHttp {
            pipeline,
            ports,
            stream,
            head_held: false,
            replied: false,
            response_head_ended: false,
            call_pending: None,
            request_headers_ended: false,
            body_during_call: None,
            outbox,
        }
    }

    fn head_verdict(&mut self, verdict: Verdict, map: MapType, end_of_stream: bool) -> Action {
        let response = map == MapType::HttpResponseHeaders;
        self.response_head_ended = response && end_of_stream;
        match verdict {
            // A translated stream whose head ends it still owes the client its closing events.
            Verdict::Continue(edits)
                if end_of_stream && response && self.pipeline.reads_response_body(&self.stream) =>
            {
                apply_edits(map, &edits);
                self.head_held = true;
                self.body_phase(map, BufferType::HttpResponseBody, 0, true)
            }
            Verdict::Continue(edits) => {
                apply_edits(map, &edits);
                Action::Continue
            }
            Verdict::AwaitBody if end_of_stream => {
                // No body will follow: let the body phase decide on an empty one right away.
                self.head_held = true;
                let body = if map == MapType::HttpRequestHeaders {
                    BufferType::HttpRequestBody
                } else {
                    BufferType::HttpResponseBody
                };
                self.body_phase(map, body, 0, true)
            }
            Verdict::AwaitBody => {
                self.head_held = true;
                Action::Pause
            }
            Verdict::Respond(reply) => self.reply(&reply),
            Verdict::Call(call) if map == MapType::HttpRequestHeaders => self.start_call(&call),
            Verdict::Call(call) => {
                log::warn!(
                    "outbound call to {} ignored: only request heads may wait for a call",
                    call.cluster()
                );
                Action::Continue
            }
        }
    }

    fn start_call(&mut self, call: &Callout) -> Action {
        match callout::dispatch(call) {
            Ok(_token) => {
                self.call_pending = Some(Waiting::Head);
                Action::Pause
            }
            Err(failed) => {
                let verdict = self.pipeline.on_call_response(&mut self.stream, &failed, self.ports.ports());
                self.head_verdict(verdict, MapType::HttpRequestHeaders, self.request_headers_ended)
            }
        }
    }

    /// Routes a call's answer to what waits for it, and resumes the request if the verdict lets it go on.
    fn finish_call(&mut self, outcome: &CallOutcome) {
        let action = match self.call_pending.take() {
            Some(Waiting::Head) => self.finish_head_call(outcome),
            Some(Waiting::Body { size }) => {
                let verdict =
                    self.pipeline.on_body_call_response(&mut self.stream, outcome, self.ports.ports());
                self.apply_body_verdict(
                    MapType::HttpRequestHeaders,
                    BufferType::HttpRequestBody,
                    size,
                    verdict,
                )
            }
            None => return,
        };
        self.publish_trace();
        if action == Action::Continue && !self.replied {
            if let Err(status) = abi::resume_request() {
                log::warn!("cannot resume request ({status:?})");
            }
        }
    }

    /// Decides the request head again once its call answered.
    fn finish_head_call(&mut self, outcome: &CallOutcome) -> Action {
        let verdict = self.pipeline.on_call_response(&mut self.stream, outcome, self.ports.ports());
        let mut action = self.head_verdict(verdict, MapType::HttpRequestHeaders, self.request_headers_ended);
        // Body that arrived during the call is not delivered again: let the pipeline see it now, unless the
        // head waits for the whole body and more is still to come (the next body callback brings it all).
        if !self.replied && self.call_pending.is_none() {
            if let Some((size, ended)) = self.body_during_call.take() {
                let wanted = self.pipeline.reads_request_body(&self.stream);
                if wanted && (action == Action::Continue || ended) {
                    action = self.body_phase(
                        MapType::HttpRequestHeaders,
                        BufferType::HttpRequestBody,
                        size,
                        ended,
                    );
                }
            }
        }
        action
    }

    /// Runs a body phase. Envoy hands over everything it holds for this direction: all chunks since the
    /// pipeline last let the body through.
    /// `size` may be [`HELD_BODY`] when the callback does not say (trailers): Envoy reads at most what it holds.
    fn body_phase(&mut self, map: MapType, buffer: BufferType, size: usize, end_of_stream: bool) -> Action {
        let body = match hostcalls::get_buffer(buffer, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log::warn!("cannot read body ({status:?})");
                Vec::new()
            }
        };
        let size = size.min(body.len());
        let ports = self.ports.ports();
        let verdict = if buffer == BufferType::HttpRequestBody {
            self.pipeline.on_request_body(&mut self.stream, &body, end_of_stream, ports)
        } else {
            self.pipeline.on_response_body(&mut self.stream, &body, end_of_stream, ports)
        };
        self.publish_trace();
        self.apply_body_verdict(map, buffer, size, verdict)
    }

    /// Applies a body verdict to the `size` bytes Envoy holds for this direction.
    fn apply_body_verdict(
        &mut self,
        map: MapType,
        buffer: BufferType,
        size: usize,
        verdict: BodyVerdict,
    ) -> Action {
        match verdict {
            BodyVerdict::Continue { head, body: Some(new_body) }
                if self.response_head_ended
                    && buffer == BufferType::HttpResponseBody
                    && !new_body.is_empty() =>
            {
                // Envoy has no body to replace: the edited head and the new body go as a local reply, which
                // Envoy sends straight to the client while the response head has not left yet.
                apply_edits(map, &head);
                self.reply(&ended_response_reply(&header_map::read(map), new_body))
            }
            BodyVerdict::Continue { head, body: replacement } => {
                // Nothing to write over nothing: there may be no buffer at all (a trailers callback).
                if let Some(new_body) = replacement.filter(|b| !(b.is_empty() && size == 0)) {
                    if self.head_held {
                        // The head has not left yet, so its framing can still match the new body.
                        let edits = HeaderEdits::default().set("content-length", new_body.len().to_string());
                        apply_edits(map, &edits);
                    }
                    if let Err(status) = abi::set_buffer(buffer, 0, size, &new_body) {
                        log::warn!("cannot replace body ({status:?})");
                    }
                }
                apply_edits(map, &head);
                self.head_held = false;
                Action::Continue
            }
            BodyVerdict::Buffer => Action::Pause,
            BodyVerdict::Respond(reply) => self.reply(&reply),
            BodyVerdict::Call(call) if buffer == BufferType::HttpRequestBody => {
                match callout::dispatch(&call) {
                    Ok(_token) => {
                        self.call_pending = Some(Waiting::Body { size });
                        Action::Pause
                    }
                    Err(failed) => {
                        let ports = self.ports.ports();
                        let verdict = self.pipeline.on_body_call_response(&mut self.stream, &failed, ports);
                        self.apply_body_verdict(map, buffer, size, verdict)
                    }
                }
            }
            BodyVerdict::Call(call) => {
                log::warn!(
                    "outbound call to {} ignored: only request bodies may wait for a call",
                    call.cluster()
                );
                Action::Continue
            }
        }
    }

    /// Publishes the decision trace as filter state (`wasm.tollgate_trace`) when it changed, for the access log.
    fn publish_trace(&mut self) {
        if let Some(trace) = self.pipeline.take_trace_update(&mut self.stream) {
            if let Err(status) = hostcalls::set_property(vec![TRACE_PROPERTY], Some(trace.as_bytes())) {
                log::debug!("cannot publish the decision trace ({status:?})");
            }
        }
    }

    fn reply(&mut self, reply: &LocalReply) -> Action {
        self.replied = true;
        let headers: Vec<(&str, &str)> =
            reply.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if let Err(status) =
            hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
        {
            log::error!("cannot send local reply ({status:?})");
        }
        Action::Pause
    }
}

impl Context for TollgateHttp {
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if self.call_pending.is_some() {
            self.finish_call(&callout::read_response(num_headers, body_size));
        }
    }

    fn on_grpc_call_response(&mut self, _token_id: u32, status_code: u32, response_size: usize) {
        if self.call_pending.is_some() {
            self.finish_call(&callout::read_grpc_response(status_code, response_size));
        }
    }
}

impl HttpContext for TollgateHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.request_headers_ended = end_of_stream;
        if self.pipeline.wants_source_address() {
            if let Ok(Some(address)) = hostcalls::get_property(vec!["source", "address"]) {
                let address = String::from_utf8_lossy(&address);
                self.pipeline.set_source_address(&mut self.stream, &address);
            }
        }
        let head = RequestHead::from_headers(header_map::read(MapType::HttpRequestHeaders));
        let verdict = self.pipeline.on_request_headers(&mut self.stream, &head, self.ports.ports());
        self.publish_trace();
        self.head_verdict(verdict, MapType::HttpRequestHeaders, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Continue;
        }
        if self.call_pending.is_some() {
            self.body_during_call = Some((body_size, end_of_stream));
            return Action::Pause;
        }
        if !self.pipeline.reads_request_body(&self.stream) {
            return Action::Continue;
        }
        self.body_phase(MapType::HttpRequestHeaders, BufferType::HttpRequestBody, body_size, end_of_stream)
    }

    /// Trailers end the request body (HTTP/2 and gRPC-style clients): the body phase decides on what Envoy
    /// holds, as for a last body chunk. Pause keeps the trailers with the held request.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_http_request_body(HELD_BODY, true)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Continue;
        }
        self.head_held = false;
        let head = if self.pipeline.reads_response_head(&self.stream) {
            ResponseHead::from_headers(header_map::read(MapType::HttpResponseHeaders))
        } else {
            ResponseHead::default()
        };
        let verdict = self.pipeline.on_response_headers(&mut self.stream, &head, self.ports.ports());
        self.head_verdict(verdict, MapType::HttpResponseHeaders, end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.pipeline.reads_response_body(&self.stream) {
            return Action::Continue;
        }
        self.body_phase(MapType::HttpResponseHeaders, BufferType::HttpResponseBody, body_size, end_of_stream)
    }

    /// Trailers end the response body. A translated stream's chunks went on as they came, so there is no
    /// buffer left for closing events; a well-ended provider stream has sent them all already.
    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_http_response_body(HELD_BODY, true)
    }

    fn on_log(&mut self) {
        crate::host_ports::publish_memory(&self.ports);
        let reports = self.pipeline.on_stream_done(&mut self.stream, self.ports.ports());
        if !reports.is_empty() {
            self.outbox.borrow_mut().extend(reports);
        }
    }
}

/// The body size asked for when a callback does not give one: the host hands over what it holds, no more.
const HELD_BODY: usize = u32::MAX as usize;

/// The local reply that stands for a response whose head ended the stream: its (edited) status and headers,
/// without pseudo-headers or framing, and the body the pipeline wrote for it.
fn ended_response_reply(headers: &Headers, body: Vec<u8>) -> LocalReply {
    let status = headers.get(":status").and_then(|v| v.parse().ok()).unwrap_or(502);
    let headers = headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':') && *n != "content-length" && *n != "transfer-encoding")
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    LocalReply { status, headers, body, details: "tollgate_rewritten_empty_response".into() }
}

fn apply_edits(map: MapType, edits: &HeaderEdits) {
    // Steps may ask for the same removal (auth and the AI gateway both strip `authorization`): once will do.
    for (i, name) in edits.remove.iter().enumerate() {
        if edits.remove.iter().take(i).any(|earlier| earlier == name) {
            continue;
        }
        if let Err(status) = abi::set_map_value(map, name, None) {
            log::warn!("cannot remove header {name} ({status:?})");
        }
    }
    for (name, value) in &edits.set {
        if let Err(status) = abi::set_map_value(map, name, Some(value)) {
            log::warn!("cannot set header {name} ({status:?})");
        }
    }
}

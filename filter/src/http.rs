use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use tollgate_core::{BodyVerdict, HeaderEdits, LocalReply, RequestHead, ResponseHead, Verdict};
use tollgate_pipeline::{Pipeline, Stream};

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
}

impl TollgateHttp {
    pub fn new(pipeline: Rc<Pipeline>, ports: Rc<HostPorts>) -> Self {
        let stream = pipeline.stream();
        TollgateHttp { pipeline, ports, stream, head_held: false, replied: false }
    }

    fn head_verdict(&mut self, verdict: Verdict, map: MapType, end_of_stream: bool) -> Action {
        match verdict {
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
        }
    }

    /// Runs a body phase. Envoy hands over everything it holds for this direction: all chunks since the
    /// pipeline last let the body through.
    fn body_phase(&mut self, map: MapType, buffer: BufferType, size: usize, end_of_stream: bool) -> Action {
        let body = match hostcalls::get_buffer(buffer, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log::warn!("cannot read body ({status:?})");
                Vec::new()
            }
        };
        let ports = self.ports.ports();
        let verdict = if buffer == BufferType::HttpRequestBody {
            self.pipeline.on_request_body(&mut self.stream, &body, end_of_stream, ports)
        } else {
            self.pipeline.on_response_body(&mut self.stream, &body, end_of_stream, ports)
        };
        match verdict {
            BodyVerdict::Continue { head, body: replacement } => {
                if let Some(new_body) = replacement {
                    if self.head_held {
                        // The head has not left yet, so its framing can still match the new body.
                        let edits = HeaderEdits::default().set("content-length", new_body.len().to_string());
                        apply_edits(map, &edits);
                    }
                    if let Err(status) = hostcalls::set_buffer(buffer, 0, size, &new_body) {
                        log::warn!("cannot replace body ({status:?})");
                    }
                }
                apply_edits(map, &head);
                self.head_held = false;
                Action::Continue
            }
            BodyVerdict::Buffer => Action::Pause,
            BodyVerdict::Respond(reply) => self.reply(&reply),
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

impl Context for TollgateHttp {}

impl HttpContext for TollgateHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let head = RequestHead::from_pairs(read_map(MapType::HttpRequestHeaders));
        let verdict = self.pipeline.on_request_headers(&mut self.stream, &head, self.ports.ports());
        self.head_verdict(verdict, MapType::HttpRequestHeaders, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Continue;
        }
        self.body_phase(MapType::HttpRequestHeaders, BufferType::HttpRequestBody, body_size, end_of_stream)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.head_held = false;
        let head = ResponseHead::from_pairs(read_map(MapType::HttpResponseHeaders));
        let verdict = self.pipeline.on_response_headers(&mut self.stream, &head, self.ports.ports());
        self.head_verdict(verdict, MapType::HttpResponseHeaders, end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.body_phase(MapType::HttpResponseHeaders, BufferType::HttpResponseBody, body_size, end_of_stream)
    }
}

/// Reads a header map. Values that are not UTF-8 (HTTP allows obs-text) are read lossily rather than trusted.
fn read_map(map: MapType) -> Vec<(String, String)> {
    match hostcalls::get_map_bytes(map) {
        Ok(pairs) => pairs.into_iter().map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned())).collect(),
        Err(status) => {
            log::warn!("cannot read headers ({status:?})");
            Vec::new()
        }
    }
}

fn apply_edits(map: MapType, edits: &HeaderEdits) {
    for name in &edits.remove {
        if let Err(status) = hostcalls::set_map_value(map, name, None) {
            log::warn!("cannot remove header {name} ({status:?})");
        }
    }
    for (name, value) in &edits.set {
        if let Err(status) = hostcalls::set_map_value(map, name, Some(value)) {
            log::warn!("cannot set header {name} ({status:?})");
        }
    }
}

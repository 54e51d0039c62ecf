use std::time::Duration;

use tollgate_core::{BodyVerdict, CallOutcome, OutboundCall, Ports, RequestHead, ResponseHead, Verdict};

use crate::header_rules::HeaderRules;
use crate::local_replies::LocalReplies;

/// Counter of requests the pipeline has seen.
pub const REQUESTS_TOTAL: &str = "tollgate_requests_total";
/// Counter of requests the pipeline answered itself.
pub const LOCAL_REPLIES_TOTAL: &str = "tollgate_local_replies_total";

/// The compiled configuration: built once per configuration, shared by every stream of a worker.
#[derive(Debug, Default)]
pub struct Pipeline {
    pub(crate) upstream_headers: HeaderRules,
    pub(crate) response_headers: HeaderRules,
    pub(crate) local_replies: LocalReplies,
}

/// A call the root context makes on its own schedule (not for any one request), e.g. a JWKS refresh.
/// `purpose` comes back with the answer so the pipeline knows what it was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackgroundCall {
    pub purpose: String,
    pub call: OutboundCall,
}

/// What the pipeline remembers about one request between its phases.
#[derive(Debug, Default)]
pub struct Stream {
    replied_locally: bool,
}

impl Pipeline {
    /// Starts the per-request state for a new stream.
    pub fn stream(&self) -> Stream {
        Stream::default()
    }

    /// The request head arrived. Local replies are decided here, before any body is read.
    pub fn on_request_headers(&self, stream: &mut Stream, head: &RequestHead, ports: Ports<'_>) -> Verdict {
        ports.metrics.increment(REQUESTS_TOTAL, 1);
        if let Some(reply) = self.local_replies.find(head) {
            ports.metrics.increment(LOCAL_REPLIES_TOTAL, 1);
            stream.replied_locally = true;
            return Verdict::Respond(reply.clone());
        }
        Verdict::Continue(self.upstream_headers.edits().clone())
    }

    /// The call a `Verdict::Call` asked for has answered (or failed); decide the request head again.
    pub fn on_call_response(
        &self,
        _stream: &mut Stream,
        _outcome: &CallOutcome,
        _ports: Ports<'_>,
    ) -> Verdict {
        Verdict::Continue(Default::default())
    }

    /// How often the root context should wake for `on_tick`; `None` when no plugin has background work.
    pub fn tick_period(&self) -> Option<Duration> {
        None
    }

    /// Background work that is due now (run on every worker; plugins coordinate through the shared store
    /// so that only one worker actually fetches).
    pub fn on_tick(&self, _ports: Ports<'_>) -> Vec<BackgroundCall> {
        Vec::new()
    }

    /// A background call answered (or failed).
    pub fn on_background_response(&self, _purpose: &str, _outcome: &CallOutcome, _ports: Ports<'_>) {}

    /// Request body arrived. `buffered` is all of it the proxy holds: every chunk since the pipeline last
    /// let the body through (so after `BodyVerdict::Buffer`, earlier chunks are seen again, with the new one).
    pub fn on_request_body(
        &self,
        _stream: &mut Stream,
        _buffered: &[u8],
        _end_of_stream: bool,
        _ports: Ports<'_>,
    ) -> BodyVerdict {
        BodyVerdict::pass()
    }

    /// The upstream's response head arrived.
    pub fn on_response_headers(
        &self,
        stream: &mut Stream,
        _head: &ResponseHead,
        _ports: Ports<'_>,
    ) -> Verdict {
        if stream.replied_locally {
            return Verdict::Continue(Default::default());
        }
        Verdict::Continue(self.response_headers.edits().clone())
    }

    /// Response body arrived; `buffered` as for `on_request_body`.
    pub fn on_response_body(
        &self,
        _stream: &mut Stream,
        _buffered: &[u8],
        _end_of_stream: bool,
        _ports: Ports<'_>,
    ) -> BodyVerdict {
        BodyVerdict::pass()
    }
}

#[cfg(test)]
mod tests {
    use tollgate_core::testing::MemoryHost;

    use super::*;

    const CONFIG: &str = r#"{
        "upstream_headers": {"set": {"x-tollgate": "on"}, "remove": ["x-internal"]},
        "response_headers": {"set": {"x-served-by": "tollgate"}},
        "local_replies": [{"path_prefix": "/tollgate/ping", "method": "GET", "status": 200, "body": {"pong": true}}]
    }"#;

    fn request(method: &str, path: &str) -> RequestHead {
        RequestHead::from_pairs([(":method", method), (":path", path), ("x-internal", "secret")])
    }

    #[test]
    fn forwarded_requests_get_upstream_and_response_edits() {
        let pipeline = Pipeline::from_json(CONFIG.as_bytes()).unwrap();
        let host = MemoryHost::default();
        let mut stream = pipeline.stream();
        let Verdict::Continue(edits) =
            pipeline.on_request_headers(&mut stream, &request("POST", "/v1/x"), host.ports())
        else {
            panic!("expected continue");
        };
        let mut headers = request("POST", "/v1/x").headers;
        edits.apply_to(&mut headers);
        assert_eq!(headers.get("x-tollgate"), Some("on"));
        assert_eq!(headers.get("x-internal"), None);
        assert_eq!(pipeline.on_request_body(&mut stream, b"{}", true, host.ports()), BodyVerdict::pass());
        let Verdict::Continue(edits) =
            pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports())
        else {
            panic!("expected continue");
        };
        assert_eq!(edits.set, [("x-served-by".to_string(), "tollgate".to_string())]);
        assert_eq!(host.metric(REQUESTS_TOTAL), 1);
        assert_eq!(host.metric(LOCAL_REPLIES_TOTAL), 0);
    }

    #[test]
    fn local_replies_answer_and_skip_response_edits() {
        let pipeline = Pipeline::from_json(CONFIG.as_bytes()).unwrap();
        let host = MemoryHost::default();
        let mut stream = pipeline.stream();
        let Verdict::Respond(reply) =
            pipeline.on_request_headers(&mut stream, &request("GET", "/tollgate/ping"), host.ports())
        else {
            panic!("expected a local reply");
        };
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, br#"{"pong":true}"#);
        let verdict = pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports());
        assert_eq!(verdict, Verdict::Continue(Default::default()));
        assert_eq!(host.metric(LOCAL_REPLIES_TOTAL), 1);
    }
}

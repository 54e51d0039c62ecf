//! Chat requests the filter sends to a provider itself (`http_call`) instead of through Envoy's router:
//! prompt endpoints, which may need a second attempt and answer the client from what came back. The
//! translation, metrics and usage are those of a routed request; only the way there differs.

use std::time::Duration;

use tollgate_core::{CallOutcome, OutboundCall, Ports, RequestHead, ResponseHead};

use super::{request_id, Ai, AiBody, AiRequest, AiResponseHead, AiStream, Endpoint};
use crate::AiError;

/// A provider's answer to a call, translated to OpenAI's shape as a routed response would be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallAnswer {
    /// 200, or the status of the OpenAI-shaped error in `body`.
    pub status: u16,
    /// Headers the client's answer should carry (`x-tollgate-provider`, `x-tollgate-reason` on errors, ...).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Ai {
    /// Makes `stream` a chat request that the filter will send itself, for the caller in `head`.
    pub fn begin_call(&self, stream: &mut AiStream, head: &RequestHead, consumer: Option<&str>) {
        stream.endpoint = Some(Endpoint::Chat);
        stream.consumer = consumer.map(str::to_string);
        stream.request_id = head.headers.get("x-request-id").map(request_id).filter(|id| !id.is_empty());
    }

    /// Translates `body` (an OpenAI chat request) for its provider and returns the call that sends it there.
    pub fn outbound_call(
        &self,
        stream: &mut AiStream,
        body: &[u8],
        timeout: Duration,
        ports: Ports<'_>,
    ) -> Result<OutboundCall, AiError> {
        let AiRequest::Upstream { head: edits, body } = self.on_request_body(stream, body, ports)? else {
            return Err(AiError::invalid("model", "the request was answered without a provider"));
        };
        let provider = stream.forwarded.as_ref().and_then(|f| self.provider(f.provider));
        let Some((provider, _)) = provider else {
            return Err(AiError::invalid("model", "the request was not routed to a provider"));
        };
        let mut call = OutboundCall::get(provider.cluster.clone(), "", "", timeout);
        call.method = "POST".into();
        call.body = body;
        for (name, value) in edits.set {
            match name.as_str() {
                ":path" => call.path = value,
                ":authority" => call.authority = value,
                _ if name == self.config.cluster_header => {}
                _ => call.headers.push((name, value)),
            }
        }
        Ok(call)
    }

    /// Forgets the last attempt's answer, so the same request can be sent again.
    pub fn retry_call(&self, stream: &mut AiStream) {
        stream.response = super::ResponseState::Waiting;
        stream.usage = None;
    }

    /// The provider answered a call (or did not): its answer in OpenAI's shape.
    pub fn call_answer(&self, stream: &mut AiStream, outcome: &CallOutcome, ports: Ports<'_>) -> CallAnswer {
        let (status, headers, body) = match outcome {
            CallOutcome::Response { status, headers, body } => (*status, headers.as_slice(), body.as_slice()),
            CallOutcome::Failed { reason } => {
                let error = AiError::BadUpstreamResponse(format!("no answer from the provider ({reason})"));
                let reply = error.to_reply();
                return CallAnswer { status: reply.status, headers: reply.headers, body: reply.body };
            }
        };
        let head = ResponseHead::from_pairs(headers.iter().map(|(n, v)| (n.as_str(), v.clone())));
        let head = ResponseHead { status, ..head };
        // A call's answer is never an event stream: the request asked for none.
        if self.on_response_head(stream, &head, ports) != AiResponseHead::AwaitBody {
            let error = AiError::BadUpstreamResponse("the provider answered a call with a stream".into());
            let reply = error.to_reply();
            return CallAnswer { status: reply.status, headers: reply.headers, body: reply.body };
        }
        let AiBody::Continue { head, body: translated } = self.on_response_body(stream, body, true, ports)
        else {
            let error = AiError::BadUpstreamResponse("the provider's answer was not read whole".into());
            let reply = error.to_reply();
            return CallAnswer { status: reply.status, headers: reply.headers, body: reply.body };
        };
        let mut answer =
            CallAnswer { status: 200, headers: Vec::new(), body: translated.unwrap_or_default() };
        for (name, value) in head.set {
            match name.as_str() {
                ":status" => answer.status = value.parse().unwrap_or(502),
                _ => answer.headers.push((name, value)),
            }
        }
        answer
    }
}

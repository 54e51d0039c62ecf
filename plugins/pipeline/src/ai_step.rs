//! The AI step of the chain: what auth decided about the caller, handed to the gateway.

use tollgate_ai::{Ai, AiHead, AiStream, Caller};
use tollgate_auth::Authorized;
use tollgate_core::RequestHead;

/// Runs the gateway on a request head auth let through. The caller's model scope filters `/v1/models`.
pub fn head(ai: &Ai, stream: &mut AiStream, head: &RequestHead, authorized: Option<&Authorized>) -> AiHead {
    let may_use_model = |model: &str| authorized.is_none_or(|a| a.may_use_model(model));
    let consumer = authorized.and_then(|a| a.consumer.as_ref()).map(|c| c.name.as_str());
    ai.on_request_head(stream, head, &Caller { consumer, may_use_model: &may_use_model })
}

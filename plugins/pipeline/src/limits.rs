//! The rate-limit step of the chain: after auth, before the AI gateway. A request that names no model is
//! decided at its head; an AI request is decided once its body names the model and the tokens it may use,
//! and the tokens and money reserved then are settled (or released) when the request ends.

use std::net::SocketAddr;

use serde::Deserialize;
use tollgate_ai::gateway::EMBEDDINGS_PATH;
use tollgate_ai::Usage;
use tollgate_auth::Authorized;
use tollgate_core::{HeaderEdits, Headers, LocalReply, Ports, RequestHead};
use tollgate_ratelimit::{estimate_prompt_tokens, Decision, RateLimits, RequestFacts, Reservation};

/// What the limits know about one stream.
#[derive(Debug, Default)]
pub struct LimitState {
    /// The client's address without its port (Envoy's `source.address`), when the filter supplied it.
    client_ip: Option<String>,
    /// The head facts of a request whose decision waits for its body.
    deferred: Option<DeferredHead>,
    /// `RateLimit-Policy` / `RateLimit` for the response of an admitted request.
    pub response_headers: HeaderEdits,
    /// What an admitted request holds until its usage is known; taken when settled or released.
    reservation: Option<Reservation>,
}

#[derive(Debug)]
struct DeferredHead {
    path: String,
    headers: Headers,
    /// Embeddings produce no output tokens, so none are reserved for them.
    embeddings: bool,
}

/// The fields of an OpenAI request body the limits need; the rest of the document is skipped.
#[derive(Deserialize)]
struct BodyFacts {
    model: Option<String>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
}

impl LimitState {
    /// Records the client address (`ip:port`, `[v6]:port`, or a bare IP).
    pub fn set_source_address(&mut self, address: &str) {
        let ip = match address.parse::<SocketAddr>() {
            Ok(socket) => socket.ip().to_string(),
            Err(_) => address.trim_matches(|c| c == '[' || c == ']').to_string(),
        };
        self.client_ip = Some(ip).filter(|ip| !ip.is_empty());
    }
}

/// Decides a request from its head alone, or (`defer`) keeps what the body decision will need.
/// Returns the refusal to send, if any.
pub fn at_head(
    limits: &RateLimits,
    state: &mut LimitState,
    head: &RequestHead,
    authorized: Option<&Authorized>,
    defer: bool,
    ports: Ports<'_>,
) -> Option<LocalReply> {
    if defer {
        let path = head.path_only();
        state.deferred = Some(DeferredHead {
            path: path.to_string(),
            headers: head.headers.clone(),
            embeddings: path == EMBEDDINGS_PATH,
        });
        return None;
    }
    let mut facts = RequestFacts::new(head);
    caller_facts(&mut facts, authorized, state.client_ip.as_deref());
    let decision = limits.check(&facts, ports);
    admit(state, decision)
}

/// Decides a deferred request once its whole body is in; `None` when nothing was deferred or it is admitted.
pub fn at_body(
    limits: &RateLimits,
    state: &mut LimitState,
    authorized: Option<&Authorized>,
    body: &[u8],
    ports: Ports<'_>,
) -> Option<LocalReply> {
    let head = state.deferred.take()?;
    // A body that does not parse names no model: only request rules apply, and the gateway refuses it.
    let parsed = serde_json::from_slice::<BodyFacts>(body).ok();
    let model = parsed.as_ref().and_then(|b| b.model.as_deref()).filter(|m| !m.is_empty());
    let max_tokens = if head.embeddings {
        Some(0)
    } else {
        parsed.as_ref().and_then(|b| b.max_completion_tokens.or(b.max_tokens))
    };
    let mut facts = RequestFacts {
        path: &head.path,
        headers: &head.headers,
        consumer: None,
        group: None,
        model,
        client_ip: None,
        prompt_tokens: estimate_prompt_tokens(body),
        max_tokens,
    };
    caller_facts(&mut facts, authorized, state.client_ip.as_deref());
    let decision = limits.check(&facts, ports);
    admit(state, decision)
}

fn caller_facts<'a>(
    facts: &mut RequestFacts<'a>,
    authorized: Option<&'a Authorized>,
    client_ip: Option<&'a str>,
) {
    let consumer = authorized.and_then(|a| a.consumer.as_ref());
    facts.consumer = consumer.map(|c| c.name.as_str());
    facts.group = consumer.and_then(|c| c.group.as_deref());
    facts.client_ip = client_ip;
}

/// Keeps what an admitted request needs for its response and its settlement; returns a refusal's reply.
fn admit(state: &mut LimitState, decision: Decision) -> Option<LocalReply> {
    match decision {
        Decision::Allow { headers, reservation } => {
            state.response_headers = headers;
            state.reservation = Some(reservation);
            None
        }
        Decision::Limit { reply, .. } => Some(reply),
    }
}

/// Charges the usage of a completed response; without usage (a provider error) everything is refunded.
pub fn settle(limits: &RateLimits, state: &mut LimitState, usage: Option<&Usage>, ports: Ports<'_>) {
    let Some(reservation) = state.reservation.take() else { return };
    match usage {
        Some(usage) => limits.settle(reservation, usage, ports),
        None => limits.release(reservation, None, ports),
    }
}

/// Ends a request that did not complete, charging only what its provider reported so far.
pub fn release(limits: &RateLimits, state: &mut LimitState, used: Option<&Usage>, ports: Ports<'_>) {
    if let Some(reservation) = state.reservation.take() {
        limits.release(reservation, used, ports);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_lose_their_port() {
        let ip = |address: &str| {
            let mut state = LimitState::default();
            state.set_source_address(address);
            state.client_ip
        };
        assert_eq!(ip("10.0.0.7:50000").as_deref(), Some("10.0.0.7"));
        assert_eq!(ip("[::1]:443").as_deref(), Some("::1"));
        assert_eq!(ip("10.0.0.7").as_deref(), Some("10.0.0.7"));
        assert_eq!(ip(""), None);
    }
}

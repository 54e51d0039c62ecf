//! The rate-limit step of the chain: after auth, before the AI gateway. A request that names no model is
//! decided at its head; an AI request is decided once its body names the model and the tokens it may use,
//! and the tokens and money reserved then are settled (or released) when the request ends.
//!
//! Global rules are asked of the rate limit service first, one call per rule (each has its own hits and
//! timeout); the local rules decide once every global rule has admitted. A global rule's hits are spent
//! even if a later rule refuses: the service has no way to give them back.

use std::collections::VecDeque;
use std::net::SocketAddr;

use serde::Deserialize;
use tollgate_ai::gateway::EMBEDDINGS_PATH;
use tollgate_ai::Usage;
use tollgate_auth::Authorized;
use tollgate_core::{CallOutcome, GrpcCall, HeaderEdits, Headers, LocalReply, Ports, RequestHead};
use tollgate_ratelimit::{
    estimate_prompt_tokens, Decision, GlobalAnswer, GlobalCheck, RateLimits, RequestFacts, Reservation,
};

/// What the limits know about one stream.
#[derive(Debug, Default)]
pub struct LimitState {
    /// The client's address without its port (Envoy's `source.address`), when the filter supplied it.
    client_ip: Option<String>,
    /// The head facts of a request whose decision waits for its body.
    deferred: Option<DeferredHead>,
    /// The request's facts while global rules are being asked (the local check runs on them afterwards).
    facts: Option<OwnedFacts>,
    /// Global rules still to ask, and the one whose answer is awaited.
    to_ask: VecDeque<GlobalCheck>,
    asking: Option<GlobalCheck>,
    /// Global rules that admitted the request: token rules report the rest of the usage at the end.
    admitted: Vec<GlobalCheck>,
    /// `RateLimit-Policy` / `RateLimit` fields the service gave for admitting global rules.
    global_fields: Vec<(String, String)>,
    /// `RateLimit-Policy` / `RateLimit` for the response of an admitted request.
    pub response_headers: HeaderEdits,
    /// What an admitted request holds until its usage is known; taken when settled or released.
    reservation: Option<Reservation>,
}

/// The limits' decision so far.
#[derive(Debug)]
pub enum LimitStep {
    Admit,
    Refuse(LocalReply),
    /// Ask the rate limit service, then call `answer` with its outcome.
    Ask(GrpcCall),
}

#[derive(Debug)]
struct DeferredHead {
    path: String,
    headers: Headers,
    /// Embeddings produce no output tokens, so none are reserved for them.
    embeddings: bool,
}

/// `RequestFacts` that outlive the callback they were learnt in (kept while the service is asked).
#[derive(Debug, Default)]
struct OwnedFacts {
    path: String,
    headers: Headers,
    consumer: Option<String>,
    group: Option<String>,
    model: Option<String>,
    client_ip: Option<String>,
    prompt_tokens: u64,
    max_tokens: Option<u64>,
}

impl OwnedFacts {
    fn view(&self) -> RequestFacts<'_> {
        RequestFacts {
            path: &self.path,
            headers: &self.headers,
            consumer: self.consumer.as_deref(),
            group: self.group.as_deref(),
            model: self.model.as_deref(),
            client_ip: self.client_ip.as_deref(),
            prompt_tokens: self.prompt_tokens,
            max_tokens: self.max_tokens,
        }
    }
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

    /// Whether the stream waits for the rate limit service's answer.
    pub fn is_asking(&self) -> bool {
        self.asking.is_some()
    }

    /// The global rule whose answer the stream waits for.
    pub fn asking_rule(&self) -> Option<&str> {
        self.asking.as_ref().map(GlobalCheck::rule)
    }
}

/// Decides a request from its head alone, or (`defer`) keeps what the body decision will need.
pub fn at_head(
    limits: &RateLimits,
    state: &mut LimitState,
    head: &RequestHead,
    authorized: Option<&Authorized>,
    defer: bool,
    ports: Ports<'_>,
) -> LimitStep {
    if defer {
        let path = head.path_only();
        state.deferred = Some(DeferredHead {
            path: path.to_string(),
            headers: head.headers.clone(),
            embeddings: path == EMBEDDINGS_PATH,
        });
        return LimitStep::Admit;
    }
    if limits.has_global_rules() {
        let mut facts = OwnedFacts {
            path: head.path_only().to_string(),
            headers: head.headers.clone(),
            ..Default::default()
        };
        caller_facts(&mut facts, authorized, state.client_ip.as_deref());
        return begin(limits, state, facts, ports);
    }
    // No service to wait for: decide on borrowed facts, without copying the head.
    let mut facts = RequestFacts::new(head);
    let consumer = authorized.and_then(|a| a.consumer.as_ref());
    facts.consumer = consumer.map(|c| c.name.as_str());
    facts.group = consumer.and_then(|c| c.group.as_deref());
    facts.client_ip = state.client_ip.as_deref();
    let decision = limits.check(&facts, ports);
    admit(state, decision)
}

/// Decides a deferred request once its whole body is in (`Admit` when nothing was deferred).
pub fn at_body(
    limits: &RateLimits,
    state: &mut LimitState,
    authorized: Option<&Authorized>,
    body: &[u8],
    ports: Ports<'_>,
) -> LimitStep {
    let Some(head) = state.deferred.take() else { return LimitStep::Admit };
    // A body that does not parse names no model: only request rules apply, and the gateway refuses it.
    let parsed = serde_json::from_slice::<BodyFacts>(body).ok();
    let max_tokens = if head.embeddings {
        Some(0)
    } else {
        parsed.as_ref().and_then(|b| b.max_completion_tokens.or(b.max_tokens))
    };
    let mut facts = OwnedFacts {
        path: head.path,
        headers: head.headers,
        model: parsed.and_then(|b| b.model).filter(|m| !m.is_empty()),
        prompt_tokens: estimate_prompt_tokens(body),
        max_tokens,
        ..Default::default()
    };
    caller_facts(&mut facts, authorized, state.client_ip.as_deref());
    begin(limits, state, facts, ports)
}

/// The service answered (or failed) the question the stream waits for; `None` if it was not asking.
pub fn answer(
    limits: &RateLimits,
    state: &mut LimitState,
    outcome: &CallOutcome,
    ports: Ports<'_>,
) -> Option<LimitStep> {
    let check = state.asking.take()?;
    Some(match limits.global_answer(&check, outcome, ports) {
        GlobalAnswer::Admit { headers } => {
            state.global_fields.extend(headers);
            state.admitted.push(check);
            next(limits, state, ports)
        }
        GlobalAnswer::Refuse(reply) => {
            state.to_ask.clear();
            state.facts = None;
            LimitStep::Refuse(reply)
        }
    })
}

fn begin(limits: &RateLimits, state: &mut LimitState, facts: OwnedFacts, ports: Ports<'_>) -> LimitStep {
    state.to_ask = limits.global_checks(&facts.view()).into();
    state.facts = Some(facts);
    next(limits, state, ports)
}

/// Asks the next global rule, or, when all have admitted, decides by the local rules.
fn next(limits: &RateLimits, state: &mut LimitState, ports: Ports<'_>) -> LimitStep {
    while let Some(check) = state.to_ask.pop_front() {
        if let Some(call) = limits.global_call(&check) {
            state.asking = Some(check);
            return LimitStep::Ask(call);
        }
    }
    let Some(facts) = state.facts.take() else { return LimitStep::Admit };
    let decision = limits.check(&facts.view(), ports);
    admit(state, decision)
}

fn caller_facts(facts: &mut OwnedFacts, authorized: Option<&Authorized>, client_ip: Option<&str>) {
    let consumer = authorized.and_then(|a| a.consumer.as_ref());
    facts.consumer = consumer.map(|c| c.name.clone());
    facts.group = consumer.and_then(|c| c.group.clone());
    facts.client_ip = client_ip.map(str::to_string);
}

/// Keeps what an admitted request needs for its response and its settlement; returns a refusal's reply.
fn admit(state: &mut LimitState, decision: Decision) -> LimitStep {
    match decision {
        Decision::Allow { headers, reservation } => {
            state.response_headers = merge_fields(headers, std::mem::take(&mut state.global_fields));
            state.reservation = Some(reservation);
            LimitStep::Admit
        }
        Decision::Limit { reply, .. } => LimitStep::Refuse(reply),
    }
}

/// Adds the global rules' items to the local `RateLimit-Policy` / `RateLimit` lists (one field each).
fn merge_fields(mut edits: HeaderEdits, global: Vec<(String, String)>) -> HeaderEdits {
    for (name, value) in global {
        match edits.set.iter_mut().find(|(n, _)| *n == name) {
            Some((_, local)) => {
                local.push_str(", ");
                local.push_str(&value);
            }
            None => edits.set.push((name, value)),
        }
    }
    edits
}

/// Charges the usage of a completed response; without usage (a provider error) everything is refunded.
/// Returns what the response cost (micro-units) when its model is priced.
pub fn settle(
    limits: &RateLimits,
    state: &mut LimitState,
    usage: Option<&Usage>,
    ports: Ports<'_>,
) -> Option<u64> {
    let reservation = state.reservation.take()?;
    match usage {
        Some(usage) => limits.settle(reservation, usage, ports),
        None => {
            limits.release(reservation, None, ports);
            None
        }
    }
}

/// Ends a request, charging only what its provider reported if it did not complete. Returns the calls
/// that report global token rules' remaining usage to the service.
pub fn release(
    limits: &RateLimits,
    state: &mut LimitState,
    used: Option<&Usage>,
    ports: Ports<'_>,
) -> Vec<GrpcCall> {
    if let Some(reservation) = state.reservation.take() {
        limits.release(reservation, used, ports);
    }
    let Some(used) = used else { return Vec::new() };
    let admitted = std::mem::take(&mut state.admitted);
    admitted.iter().filter_map(|check| limits.global_settle(check, used, ports)).collect()
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

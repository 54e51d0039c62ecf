//! The auth step of the chain: who is calling, may they use this route, and — when a JWT provider has no
//! keys yet — the JWKS call to make before deciding.

use tollgate_auth::jwt::JwtRejection;
use tollgate_auth::{Auth, AuthDecision, AuthError, Authorized};
use tollgate_core::{CallOutcome, HeaderEdits, LocalReply, OutboundCall, Ports, RequestHead};

/// Prefix of the `BackgroundCall::purpose` of a scheduled JWKS refresh; the provider name follows.
pub const JWKS_PURPOSE: &str = "jwks:";

/// What auth knows about one stream.
#[derive(Debug, Default)]
pub struct AuthState {
    /// The caller, once let through; later steps (limits, model scopes) decide per consumer.
    pub authorized: Option<Authorized>,
    /// The JWKS fetch this stream waits for: the provider, and the head to decide again afterwards.
    pending: Option<(String, RequestHead)>,
    /// A stream fetches keys at most once; if they are still missing after that, it is refused.
    fetched: bool,
    /// Envoy's downstream peer (`source.address`), for route IP rules; set before the head is decided.
    source_address: Option<String>,
}

impl AuthState {
    pub fn set_source_address(&mut self, address: &str) {
        self.source_address = Some(address.to_string());
    }
}

pub enum AuthStep {
    Allow(HeaderEdits),
    Reply(LocalReply),
    Call(OutboundCall),
}

pub fn authenticate(auth: &Auth, state: &mut AuthState, head: &RequestHead, ports: Ports<'_>) -> AuthStep {
    match auth.authenticate_from(head, state.source_address.as_deref(), ports) {
        AuthDecision::Allow(mut authorized) => {
            // Later steps read who the caller is, never these edits: they go to the request as they are.
            let edits = std::mem::take(&mut authorized.edits);
            state.authorized = Some(authorized);
            AuthStep::Allow(edits)
        }
        AuthDecision::Deny(error) => AuthStep::Reply(error.to_reply()),
        AuthDecision::NeedsKeys(fetch) if !state.fetched => {
            state.fetched = true;
            state.pending = Some((fetch.provider, head.clone()));
            AuthStep::Call(fetch.call)
        }
        AuthDecision::NeedsKeys(_) => {
            AuthStep::Reply(AuthError::Jwt(JwtRejection::KeysUnavailable).to_reply())
        }
    }
}

/// The model-scope check of a key limited to some models, once the whole request body is known. The model
/// is the body's top-level `"model"` (the OpenAI and Anthropic request shape); a body without one names no
/// model and is not refused. Returns the 403 reply when the key may not use the model.
pub fn check_model(auth: &Auth, state: &AuthState, body: &[u8], ports: Ports<'_>) -> Option<LocalReply> {
    let authorized = state.authorized.as_ref()?;
    let model = requested_model(body)?;
    auth.check_model(authorized, &model, ports).err().map(|error| error.to_reply())
}

/// The top-level `"model"` string of a JSON body, without materialising the rest of the document.
fn requested_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ModelOnly {
        model: Option<String>,
    }
    serde_json::from_slice::<ModelOnly>(body).ok()?.model
}

/// Stores the keys a stream waited for and hands back its head to decide again; `None` if the stream was
/// not waiting for keys.
pub fn keys_arrived(
    auth: &Auth,
    state: &mut AuthState,
    outcome: &CallOutcome,
    ports: Ports<'_>,
) -> Option<RequestHead> {
    let (provider, head) = state.pending.take()?;
    // A refused document leaves the previous keys in place; the JWT plugin counts the failure.
    let _ = auth.jwt().on_jwks_response(&provider, outcome, ports);
    Some(head)
}

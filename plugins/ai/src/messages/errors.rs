//! Anthropic's error shape: `{"type":"error","error":{"type":<kind>,"message":<text>}}`, with the kinds
//! Anthropic's SDKs map to their exception classes.

use serde_json::{json, Value};
use tollgate_core::LocalReply;

/// Anthropic's error `type` for an HTTP status.
fn kind_for(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// An Anthropic error body for a status and message.
pub fn anthropic_error_json(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind_for(status), "message": message } })
}

/// The same reply in Anthropic's shape: an OpenAI-shaped error body (`{"error":{"message",...}}`, which
/// every Tollgate refusal has) is rewritten, keeping status, headers and the `x-tollgate-reason` code.
/// Any other reply (a model list, a configured local reply) is left as it is.
pub fn to_anthropic_reply(mut reply: LocalReply) -> LocalReply {
    if reply.status < 400 {
        return reply;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&reply.body) else { return reply };
    let Some(message) = body.pointer("/error/message").and_then(Value::as_str) else { return reply };
    let mut message = message.to_string();
    // The OpenAI shape names the offending field apart; Anthropic's has only the message.
    if let Some(param) = body.pointer("/error/param").and_then(Value::as_str) {
        if !message.contains(param) {
            message = format!("{param}: {message}");
        }
    }
    reply.body = anthropic_error_json(reply.status, &message).to_string().into_bytes();
    reply
}

use crate::{Callout, Headers};

/// Changes to a message head that the filter applies before letting it through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Fields to set, replacing any existing values of the same name.
    pub set: Vec<(String, String)>,
    /// Fields to remove.
    pub remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.push((name.into(), value.into()));
        self
    }

    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// Applies the edits to an in-memory head (used by tests and by plugins that chain edits).
    pub fn apply_to(&self, headers: &mut Headers) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.set(name, value.clone());
        }
    }

    /// Adds another plugin's edits after these ones, so later plugins win.
    pub fn extend(&mut self, other: HeaderEdits) {
        // The common case on the request path: nothing yet, so the other's vectors are taken as they are.
        if self.is_empty() {
            *self = other;
            return;
        }
        self.remove.extend(other.remove);
        self.set.extend(other.set);
    }
}

/// A response the filter sends to the client itself, without (further) involving the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A short token Envoy records as the response code details (`%RESPONSE_CODE_DETAILS%`).
    pub details: String,
}

impl LocalReply {
    /// A JSON reply with the right content type.
    pub fn json(status: u16, details: impl Into<String>, body: &serde_json::Value) -> Self {
        LocalReply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            details: details.into(),
        }
    }

    /// The OpenAI-shaped error body every Tollgate error uses: `{"error":{"message","type","code"}}`, with
    /// the code also in the `x-tollgate-reason` header.
    pub fn error(status: u16, kind: &str, code: &str, message: &str) -> Self {
        let body = serde_json::json!({
            "error": { "message": message, "type": kind, "code": code }
        });
        Self::json(status, format!("tollgate_{code}"), &body).with_reason(code)
    }

    /// Names the reply's reason code in the `x-tollgate-reason` header.
    pub fn with_reason(mut self, code: &str) -> Self {
        self.headers.retain(|(name, _)| name != crate::REASON_HEADER);
        self.headers.push((crate::REASON_HEADER.into(), code.into()));
        self
    }

    /// The reason code this reply names, if it is a refusal.
    pub fn reason(&self) -> Option<&str> {
        self.headers.iter().find(|(name, _)| name == crate::REASON_HEADER).map(|(_, code)| code.as_str())
    }
}

/// What the pipeline decided about a message head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the head through now, with these edits.
    Continue(HeaderEdits),
    /// Hold the head until the body has been read; the body phase decides (and may still edit the head).
    AwaitBody,
    /// Answer the client directly.
    Respond(LocalReply),
    /// Hold the head, make this call, and decide again when it answers (`Pipeline::on_call_response`).
    Call(Callout),
}

/// What the pipeline decided about a body chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyVerdict {
    /// Let the body through. `head` edits apply to a head held by `Verdict::AwaitBody`; `body`, when given,
    /// replaces the whole body buffered so far.
    Continue { head: HeaderEdits, body: Option<Vec<u8>> },
    /// Keep buffering: the pipeline needs more of the body before it can decide.
    Buffer,
    /// Answer the client directly.
    Respond(LocalReply),
    /// Hold the body (and a head still held), make this call, and decide again when it answers
    /// (`Pipeline::on_body_call_response`). Only after the whole body is in.
    Call(Callout),
}

impl BodyVerdict {
    /// Let the body through untouched.
    pub fn pass() -> Self {
        BodyVerdict::Continue { head: HeaderEdits::default(), body: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_openai_shaped_json() {
        let reply = LocalReply::error(401, "authentication_error", "missing_credentials", "no API key");
        assert_eq!(reply.status, 401);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "missing_credentials");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["message"], "no API key");
        assert!(reply.headers.contains(&("content-type".into(), "application/json".into())));
        assert_eq!(reply.details, "tollgate_missing_credentials");
        assert_eq!(reply.reason(), Some("missing_credentials"));
        assert!(reply.headers.contains(&("x-tollgate-reason".into(), "missing_credentials".into())));
    }

    #[test]
    fn later_edits_win() {
        let mut edits = HeaderEdits::default().set("x-a", "1").remove("x-gone");
        edits.extend(HeaderEdits::default().set("x-a", "2"));
        let mut headers: Headers = [("x-gone", "v"), ("x-a", "0")].into_iter().collect();
        edits.apply_to(&mut headers);
        assert_eq!(headers.get("x-a"), Some("2"));
        assert_eq!(headers.get("x-gone"), None);
    }
}

use tollgate_core::{LocalReply, Reason};

/// Every reason code the AI gateway's own replies carry (a provider's error keeps the provider's `code` in the
/// body; its `x-tollgate-reason` is `provider_error`).
pub const REASONS: &[Reason] = &[
    Reason {
        code: "invalid_request",
        status: 400,
        meaning: "the body is not a valid OpenAI request; error.param names the field",
        action: "fix the field named in error.param",
    },
    Reason {
        code: "model_not_found",
        status: 404,
        meaning: "no ai.models entry serves this model name",
        action: "use a model GET /v1/models lists; operator: add a route in ai.models",
    },
    Reason {
        code: "unsupported_parameter",
        status: 400,
        meaning: "the provider cannot honour a request field and ai.unsupported_fields is reject",
        action: "drop the field, or operator: set ai.unsupported_fields to drop",
    },
    Reason {
        code: "method_not_allowed",
        status: 405,
        meaning: "the AI endpoint does not take this HTTP method (the Allow header lists those it does)",
        action: "use the method in Allow",
    },
    Reason {
        code: "body_too_large",
        status: 413,
        meaning: "the request body (413), or a response body or SSE event (502), exceeds ai.limits",
        action: "send a smaller request; operator: raise ai.limits",
    },
    Reason {
        code: "bad_upstream_response",
        status: 502,
        meaning:
            "the provider answered with something that is not its documented format, or did not answer a \
                  prompt endpoint's call in time",
        action: "retry; operator: check the provider's cluster and base_url",
    },
    Reason {
        code: "upstream_stream_truncated",
        status: 200,
        meaning:
            "the provider's stream ended before its final event; the stream's 200 was already sent, so the \
                  code comes in a last SSE error event (before data: [DONE]), not in a header",
        action: "retry the request",
    },
    Reason {
        code: "provider_error",
        status: 502,
        meaning: "the provider refused or failed the request; its status and error.code are passed on",
        action: "read error.message and error.code, which come from the provider",
    },
];

/// Everything that can go wrong on an AI route. Each variant knows the HTTP status and the OpenAI error
/// `type` / `code` the client receives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    /// The client's body is not a valid request; `param` names the offending field (JSON path) when known.
    #[error("{message}")]
    InvalidRequest { param: Option<String>, message: String },
    /// No configured route serves this model name.
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    UnknownModel(String),
    /// The chosen provider cannot honour these request fields and the config says to refuse, not drop.
    #[error("{provider} does not support: {}", fields.join(", "))]
    Unsupported { provider: String, fields: Vec<String> },
    /// The provider answered with an error; status and message are carried over in OpenAI's shape.
    #[error("{message}")]
    Upstream { status: u16, kind: String, code: Option<String>, message: String },
    /// The provider answered with something that is not its documented format.
    #[error("the upstream provider sent an unreadable response: {0}")]
    BadUpstreamResponse(String),
    /// A body or a single SSE event exceeded the configured bound.
    #[error("{what} exceeds the configured limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: usize, status: u16 },
    /// The provider's stream ended before its final event.
    #[error("the upstream stream ended before it was complete")]
    TruncatedStream,
}

impl AiError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        AiError::InvalidRequest { param: Some(param.into()), message: message.into() }
    }

    pub fn status(&self) -> u16 {
        match self {
            AiError::InvalidRequest { .. } | AiError::Unsupported { .. } => 400,
            AiError::UnknownModel(_) => 404,
            AiError::Upstream { status, .. } => *status,
            AiError::BadUpstreamResponse(_) | AiError::TruncatedStream => 502,
            AiError::TooLarge { status, .. } => *status,
        }
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &str {
        match self {
            AiError::InvalidRequest { .. }
            | AiError::UnknownModel(_)
            | AiError::Unsupported { .. }
            | AiError::TooLarge { status: 413, .. } => "invalid_request_error",
            AiError::Upstream { kind, .. } => kind,
            AiError::BadUpstreamResponse(_) | AiError::TruncatedStream | AiError::TooLarge { .. } => {
                "upstream_error"
            }
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> Option<&str> {
        match self {
            AiError::InvalidRequest { .. } => Some("invalid_request"),
            AiError::UnknownModel(_) => Some("model_not_found"),
            AiError::Unsupported { .. } => Some("unsupported_parameter"),
            AiError::Upstream { code, .. } => code.as_deref(),
            AiError::BadUpstreamResponse(_) => Some("bad_upstream_response"),
            AiError::TooLarge { .. } => Some("body_too_large"),
            AiError::TruncatedStream => Some("upstream_stream_truncated"),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            AiError::InvalidRequest { param, .. } => param.as_deref(),
            AiError::UnknownModel(_) => Some("model"),
            AiError::Unsupported { fields, .. } => fields.first().map(String::as_str),
            _ => None,
        }
    }

    /// `{"error":{"message","type","param","code"}}`, as OpenAI sends it (also the payload of an SSE error event).
    pub fn to_openai_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "param": self.param(),
                "code": self.code(),
            }
        })
    }

    /// The reason code of the reply (`x-tollgate-reason`): the error's own code, or `provider_error`.
    pub fn reason(&self) -> &'static str {
        match self {
            AiError::InvalidRequest { .. } => "invalid_request",
            AiError::UnknownModel(_) => "model_not_found",
            AiError::Unsupported { .. } => "unsupported_parameter",
            AiError::Upstream { .. } => "provider_error",
            AiError::BadUpstreamResponse(_) => "bad_upstream_response",
            AiError::TooLarge { .. } => "body_too_large",
            AiError::TruncatedStream => "upstream_stream_truncated",
        }
    }

    pub fn to_reply(&self) -> LocalReply {
        let details = format!("tollgate_{}", self.code().unwrap_or("ai_error"));
        LocalReply::json(self.status(), details, &self.to_openai_json()).with_reason(self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_is_openai_404() {
        let reply = AiError::UnknownModel("gpt-9".into()).to_reply();
        assert_eq!(reply.status, 404);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(reply.reason(), Some("model_not_found"));
    }

    #[test]
    fn every_reason_is_documented_and_every_documented_reason_is_produced() {
        let samples = [
            AiError::invalid("messages", "x"),
            AiError::UnknownModel("m".into()),
            AiError::Unsupported { provider: "p".into(), fields: vec!["f".into()] },
            AiError::Upstream {
                status: 429,
                kind: "rate_limit_error".into(),
                code: None,
                message: "m".into(),
            },
            AiError::BadUpstreamResponse("x".into()),
            AiError::TooLarge { what: "request body", limit: 1, status: 413 },
            AiError::TruncatedStream,
        ];
        let mut produced: Vec<&str> = samples.iter().map(AiError::reason).collect();
        produced.push("method_not_allowed");
        for error in &samples {
            let reason = REASONS.iter().find(|r| r.code == error.reason()).unwrap();
            match error {
                AiError::Upstream { .. } | AiError::TooLarge { .. } => {}
                // Only a stream can be cut short, and its 200 went to the client before.
                AiError::TruncatedStream => assert_eq!(reason.status, 200),
                _ => {
                    assert_eq!(reason.status, error.status(), "{error:?}");
                    assert_eq!(error.code(), Some(reason.code), "body code and reason agree");
                }
            }
        }
        for reason in REASONS {
            assert!(produced.contains(&reason.code), "{} is never produced", reason.code);
        }
    }
}

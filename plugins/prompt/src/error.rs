use serde::Serialize;
use tollgate_core::{LocalReply, Reason};

/// Every reason code a prompt endpoint's own replies carry.
pub const REASONS: &[Reason] = &[
    Reason {
        code: "invalid_variables",
        status: 400,
        meaning:
            "a prompt endpoint's body is not a JSON object of its declared variables; error.fields lists \
                  every problem",
        action: "fix each field in error.fields (the OpenAPI document at prompt.openapi.path describes them)",
    },
    Reason {
        code: "prompt_method_not_allowed",
        status: 405,
        meaning: "the prompt endpoint does not take this HTTP method (the Allow header lists those it does)",
        action: "use the method in Allow",
    },
    Reason {
        code: "prompt_no_output",
        status: 502,
        meaning: "the model's answer to a prompt endpoint had no text (a refusal, a tool call, no choice)",
        action: "retry; operator: check the endpoint's model and prompt",
    },
    Reason {
        code: "output_schema_mismatch",
        status: 502,
        meaning: "the model's answer was not JSON matching the endpoint's output schema, on the retry too",
        action: "retry; operator: tighten the prompt or relax prompt.endpoints[].output.schema",
    },
];

/// One problem with one variable of a request body. `field` is the variable (`tags[2]` for an array item),
/// or empty when the body as a whole is at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// Everything a prompt endpoint can refuse or fail with. Each variant knows its status and stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// The body is not valid JSON, not an object, or its variables break their schema; every problem listed.
    #[error("invalid variables: {}", summary(.0))]
    InvalidVariables(Vec<FieldError>),
    /// The path is a prompt endpoint, but not for this method.
    #[error("{method} is not allowed on this prompt endpoint; use {}", allowed.join(", "))]
    MethodNotAllowed { method: String, allowed: Vec<String> },
    /// The provider's (translated) completion carries no text to return.
    #[error("the model returned no usable output: {0}")]
    NoOutput(String),
    /// The answer is not JSON matching the endpoint's output schema (after the caller's one retry).
    #[error("the model's answer does not match the output schema: {0}")]
    OutputSchemaMismatch(String),
}

fn summary(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| if f.field.is_empty() { f.message.clone() } else { format!("{}: {}", f.field, f.message) })
        .collect();
    parts.join("; ")
}

impl PromptError {
    pub fn status(&self) -> u16 {
        match self {
            PromptError::InvalidVariables(_) => 400,
            PromptError::MethodNotAllowed { .. } => 405,
            PromptError::NoOutput(_) | PromptError::OutputSchemaMismatch(_) => 502,
        }
    }

    /// The stable code, in `error.code` and `x-tollgate-reason`.
    pub fn code(&self) -> &'static str {
        match self {
            PromptError::InvalidVariables(_) => "invalid_variables",
            PromptError::MethodNotAllowed { .. } => "prompt_method_not_allowed",
            PromptError::NoOutput(_) => "prompt_no_output",
            PromptError::OutputSchemaMismatch(_) => "output_schema_mismatch",
        }
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            PromptError::InvalidVariables(_) | PromptError::MethodNotAllowed { .. } => {
                "invalid_request_error"
            }
            PromptError::NoOutput(_) | PromptError::OutputSchemaMismatch(_) => "upstream_error",
        }
    }

    /// `{"error":{"message","type","code"}}`, plus `fields` listing every problem for invalid variables.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "error": { "message": self.to_string(), "type": self.kind(), "code": self.code() }
        });
        if let (PromptError::InvalidVariables(fields), Some(error)) = (self, body.get_mut("error")) {
            error["fields"] = serde_json::json!(fields);
        }
        body
    }

    pub fn to_reply(&self) -> LocalReply {
        let mut reply = LocalReply::json(self.status(), format!("tollgate_{}", self.code()), &self.to_json())
            .with_reason(self.code());
        if let PromptError::MethodNotAllowed { allowed, .. } = self {
            reply.headers.push(("allow".into(), allowed.join(", ")));
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    fn samples() -> Vec<PromptError> {
        vec![
            PromptError::InvalidVariables(vec![FieldError::new("text", "is required")]),
            PromptError::MethodNotAllowed { method: "GET".into(), allowed: vec!["POST".into()] },
            PromptError::NoOutput("x".into()),
            PromptError::OutputSchemaMismatch("x".into()),
        ]
    }

    #[test]
    fn every_error_names_a_documented_reason_with_its_status() {
        for error in samples() {
            let reason = REASONS.iter().find(|r| r.code == error.code());
            let reason = reason.unwrap_or_else(|| panic!("{:?} is not in REASONS", error.code()));
            assert_eq!(reason.status, error.status(), "{error:?}");
            let reply = error.to_reply();
            assert_eq!(reply.status, error.status());
            assert_eq!(reply.reason(), Some(error.code()));
        }
        for reason in REASONS {
            assert!(samples().iter().any(|e| e.code() == reason.code), "{} is never produced", reason.code);
        }
    }

    #[test]
    fn invalid_variables_list_every_field_in_the_body() {
        let error = PromptError::InvalidVariables(vec![
            FieldError::new("", "the body must be a JSON object"),
            FieldError::new("lang", "must be one of: en, fr"),
        ]);
        let body: serde_json::Value = serde_json::from_slice(&error.to_reply().body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_variables");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(
            body["error"]["message"],
            "invalid variables: the body must be a JSON object; lang: must be one of: en, fr"
        );
        assert_eq!(
            body["error"]["fields"][1],
            serde_json::json!({"field": "lang", "message": "must be one of: en, fr"})
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let error = PromptError::MethodNotAllowed {
            method: "GET".into(),
            allowed: vec!["POST".into(), "PUT".into()],
        };
        let reply = error.to_reply();
        assert!(reply.headers.contains(&("allow".into(), "POST, PUT".into())));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(body["error"].get("fields").is_none());
    }
}

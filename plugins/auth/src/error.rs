use tollgate_core::LocalReply;

use crate::client_ip::IpDenial;
use crate::jwt::JwtRejection;
use crate::routes::Require;

/// Why a request was refused. Messages name key ids, consumers and models, never a presented secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential of a kind the route accepts was presented.
    #[error("{}", missing_message(*.0))]
    MissingCredentials(Require),
    /// A key was presented but no configured key has its hash.
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("API key {key_id} has expired")]
    ExpiredApiKey { key_id: String },
    /// A JWT was presented and every provider the route accepts rejected it. Usually 401; 503 when the
    /// signing keys are unavailable (see `JwtRejection::status`).
    #[error("the bearer token was rejected: {0}")]
    Jwt(JwtRejection),
    /// The route admits only some consumers or groups, and this one is not among them.
    #[error("consumer {consumer} may not use this route")]
    ForbiddenConsumer { consumer: String },
    /// The key is scoped to other route prefixes.
    #[error("API key {key_id} is not allowed on this route")]
    KeyRouteScope { consumer: String, key_id: String },
    /// The key is scoped to other models.
    #[error("API key {key_id} may not use model {model:?}")]
    ForbiddenModel { consumer: String, key_id: String, model: String },
    /// The route's IP rules refuse the client address (or it is unknown). The message names neither the
    /// address nor the rules.
    #[error("{}", ip_message(*.0))]
    IpDenied(IpDenial),
    /// The route limits this consumer (by name or group) to other methods.
    #[error("consumer {consumer} may not use method {method} on this route")]
    MethodNotAllowedForConsumer { consumer: String, method: String },
}

fn ip_message(denial: IpDenial) -> &'static str {
    match denial {
        IpDenial::NotAllowed => "the client address is not allowed on this route",
        IpDenial::UnknownAddress => {
            "the client address could not be determined, and this route admits only some addresses"
        }
    }
}

fn missing_message(accepted: Require) -> &'static str {
    match accepted {
        Require::ApiKey => "this route requires an API key",
        Require::Jwt => "this route requires a bearer token (JWT)",
        Require::Any | Require::None => "this route requires an API key or a bearer token",
    }
}

/// The `WWW-Authenticate` challenge of a 401, per RFC 6750.
const CHALLENGE: &str = r#"Bearer realm="tollgate""#;
const CHALLENGE_INVALID: &str = r#"Bearer realm="tollgate", error="invalid_token""#;

impl AuthError {
    pub fn status(&self) -> u16 {
        match self {
            AuthError::MissingCredentials(_) | AuthError::InvalidApiKey | AuthError::ExpiredApiKey { .. } => {
                401
            }
            AuthError::Jwt(rejection) => rejection.status(),
            AuthError::ForbiddenConsumer { .. }
            | AuthError::KeyRouteScope { .. }
            | AuthError::ForbiddenModel { .. }
            | AuthError::IpDenied(_)
            | AuthError::MethodNotAllowedForConsumer { .. } => 403,
        }
    }

    /// A stable machine-readable code, the `error.code` of the reply.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials(_) => "missing_credentials",
            AuthError::InvalidApiKey => "invalid_api_key",
            AuthError::ExpiredApiKey { .. } => "expired_api_key",
            AuthError::Jwt(rejection) => rejection.code(),
            AuthError::ForbiddenConsumer { .. } => "consumer_not_allowed",
            AuthError::KeyRouteScope { .. } => "key_scope_route",
            AuthError::ForbiddenModel { .. } => "key_scope_model",
            AuthError::IpDenied(_) => "ip_denied",
            AuthError::MethodNotAllowedForConsumer { .. } => "method_not_allowed_for_consumer",
        }
    }

    /// The OpenAI `error.type` that goes with the status.
    pub fn kind(&self) -> &'static str {
        match self.status() {
            401 => "authentication_error",
            403 => "permission_error",
            _ => "api_error",
        }
    }

    /// Which outcome counter (`tollgate_auth_<outcome>_total`) this refusal counts under.
    pub fn outcome(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials(_) => "missing",
            AuthError::InvalidApiKey => "invalid",
            AuthError::ExpiredApiKey { .. } => "expired",
            AuthError::Jwt(rejection) if rejection.is_expired() => "expired",
            AuthError::Jwt(rejection) if rejection.status() >= 500 => "unavailable",
            AuthError::Jwt(_) => "invalid",
            AuthError::ForbiddenConsumer { .. }
            | AuthError::KeyRouteScope { .. }
            | AuthError::ForbiddenModel { .. } => "forbidden",
            AuthError::IpDenied(_) => "ip_denied",
            AuthError::MethodNotAllowedForConsumer { .. } => "method_denied",
        }
    }

    /// The consumer that was identified before being refused, if any.
    pub fn consumer(&self) -> Option<&str> {
        match self {
            AuthError::ForbiddenConsumer { consumer }
            | AuthError::KeyRouteScope { consumer, .. }
            | AuthError::ForbiddenModel { consumer, .. }
            | AuthError::MethodNotAllowedForConsumer { consumer, .. } => Some(consumer),
            _ => None,
        }
    }

    /// The OpenAI-shaped error reply, with a `WWW-Authenticate` challenge on 401. A presented but unusable
    /// credential gets `error="invalid_token"`; a missing one gets the bare challenge (RFC 6750 §3.1).
    pub fn to_reply(&self) -> LocalReply {
        let mut reply = LocalReply::error(self.status(), self.kind(), self.code(), &self.to_string());
        let challenge = match self {
            AuthError::MissingCredentials(_) => Some(CHALLENGE),
            AuthError::Jwt(rejection) if rejection.status() != 401 => None,
            AuthError::InvalidApiKey | AuthError::ExpiredApiKey { .. } | AuthError::Jwt(_) => {
                Some(CHALLENGE_INVALID)
            }
            _ => None,
        };
        if let Some(challenge) = challenge {
            reply.headers.push(("www-authenticate".into(), challenge.into()));
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: &LocalReply) -> serde_json::Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn challenge(reply: &LocalReply) -> Option<&str> {
        reply.headers.iter().find(|(n, _)| n == "www-authenticate").map(|(_, v)| v.as_str())
    }

    #[test]
    fn missing_credentials_is_a_bare_bearer_challenge() {
        let reply = AuthError::MissingCredentials(Require::Any).to_reply();
        assert_eq!(reply.status, 401);
        assert_eq!(challenge(&reply), Some(r#"Bearer realm="tollgate""#));
        let body = body(&reply);
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "missing_credentials");
        assert_eq!(body["error"]["message"], "this route requires an API key or a bearer token");
    }

    #[test]
    fn bad_credentials_say_invalid_token() {
        for err in [AuthError::InvalidApiKey, AuthError::ExpiredApiKey { key_id: "k-1".into() }] {
            let reply = err.to_reply();
            assert_eq!(reply.status, 401);
            assert_eq!(challenge(&reply), Some(r#"Bearer realm="tollgate", error="invalid_token""#));
        }
        assert_eq!(
            body(&AuthError::ExpiredApiKey { key_id: "k-1".into() }.to_reply())["error"]["code"],
            "expired_api_key"
        );
    }

    #[test]
    fn permission_errors_are_403_without_a_challenge() {
        let errs = [
            AuthError::ForbiddenConsumer { consumer: "alice".into() },
            AuthError::KeyRouteScope { consumer: "alice".into(), key_id: "k-1".into() },
            AuthError::ForbiddenModel { consumer: "alice".into(), key_id: "k-1".into(), model: "o1".into() },
        ];
        let codes: Vec<_> = errs.iter().map(AuthError::code).collect();
        assert_eq!(codes, ["consumer_not_allowed", "key_scope_route", "key_scope_model"]);
        for err in errs {
            let reply = err.to_reply();
            assert_eq!(reply.status, 403);
            assert_eq!(challenge(&reply), None);
            assert_eq!(body(&reply)["error"]["type"], "permission_error");
            assert_eq!(err.consumer(), Some("alice"));
        }
    }

    #[test]
    fn ip_and_method_denials_are_403_permission_errors() {
        let errs = [
            AuthError::IpDenied(IpDenial::NotAllowed),
            AuthError::IpDenied(IpDenial::UnknownAddress),
            AuthError::MethodNotAllowedForConsumer { consumer: "alice".into(), method: "POST".into() },
        ];
        let codes: Vec<_> = errs.iter().map(AuthError::code).collect();
        assert_eq!(codes, ["ip_denied", "ip_denied", "method_not_allowed_for_consumer"]);
        let outcomes: Vec<_> = errs.iter().map(AuthError::outcome).collect();
        assert_eq!(outcomes, ["ip_denied", "ip_denied", "method_denied"]);
        for err in &errs {
            let reply = err.to_reply();
            assert_eq!(reply.status, 403);
            assert_eq!(challenge(&reply), None);
            assert_eq!(body(&reply)["error"]["type"], "permission_error");
        }
        assert_eq!(errs[0].to_string(), "the client address is not allowed on this route");
        assert_eq!(errs[0].consumer(), None);
        assert_eq!(errs[2].to_string(), "consumer alice may not use method POST on this route");
        assert_eq!(errs[2].consumer(), Some("alice"));
    }

    #[test]
    fn messages_name_the_route_requirement() {
        assert_eq!(
            AuthError::MissingCredentials(Require::ApiKey).to_string(),
            "this route requires an API key"
        );
        assert_eq!(
            AuthError::MissingCredentials(Require::Jwt).to_string(),
            "this route requires a bearer token (JWT)"
        );
        assert_eq!(
            AuthError::ForbiddenModel { consumer: "a".into(), key_id: "k-1".into(), model: "o1".into() }
                .to_string(),
            r#"API key k-1 may not use model "o1""#
        );
    }
}

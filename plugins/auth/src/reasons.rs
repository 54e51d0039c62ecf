//! The reason codes auth's refusals carry (`error.code` and `x-tollgate-reason`), with what each means and
//! what to do. A test holds every `AuthError` against this list.

use tollgate_core::Reason;

const fn reason(code: &'static str, status: u16, meaning: &'static str, action: &'static str) -> Reason {
    Reason { code, status, meaning, action }
}

pub const REASONS: &[Reason] = &[
    reason(
        "missing_credentials",
        401,
        "the route needs an API key or a bearer token and none was sent",
        "send the key (Authorization: Bearer, x-api-key or api-key) or a JWT; WWW-Authenticate says which",
    ),
    reason(
        "invalid_api_key",
        401,
        "no configured key has this key's hash",
        "check the key; operator: tollgate-replay keygen prints a key and the sha256 to configure",
    ),
    reason("expired_api_key", 401, "the key's expires_at has passed", "ask for a new key"),
    reason(
        "key_scope_route",
        403,
        "the key is scoped to other route prefixes",
        "use a key whose routes include this path",
    ),
    reason(
        "key_scope_model",
        403,
        "the key is scoped to other models",
        "use a model the key allows, or another key",
    ),
    reason(
        "consumer_not_allowed",
        403,
        "the route admits only some consumers or groups, and not this one",
        "operator: add the consumer or its group to the route's consumers or groups",
    ),
    reason(
        "ip_denied",
        403,
        "the route's IP rules do not admit the client address (or it could not be found)",
        "call from an allowed network; operator: check the route's ip rules and auth.client_address",
    ),
    reason(
        "method_not_allowed_for_consumer",
        403,
        "the route's consumer_methods limit this consumer to other methods",
        "use an allowed method, or operator: widen consumer_methods",
    ),
    reason(
        "jwt_malformed",
        401,
        "the bearer token is not a well-formed JWT",
        "send a compact JWS (header.payload.signature)",
    ),
    reason(
        "jwt_too_large",
        401,
        "the bearer token is larger than the configured maximum",
        "send a smaller token",
    ),
    reason(
        "jwt_algorithm_not_allowed",
        401,
        "the token's alg is not one the provider allows",
        "sign with an allowed algorithm; operator: the provider's algorithms",
    ),
    reason(
        "jwt_unknown_key",
        401,
        "no key of the provider's JWKS has the token's kid",
        "sign with a published key; keys rotate within the JWKS refresh interval",
    ),
    reason(
        "jwt_bad_signature",
        401,
        "the token's signature does not verify",
        "get a fresh token from the issuer",
    ),
    reason(
        "jwt_expired",
        401,
        "the token's exp has passed (beyond the allowed clock skew)",
        "get a fresh token",
    ),
    reason("jwt_not_yet_valid", 401, "the token's nbf or iat is in the future", "check the issuer's clock"),
    reason(
        "jwt_wrong_issuer",
        401,
        "the token's iss is not the provider's issuer",
        "use a token from the configured issuer",
    ),
    reason(
        "jwt_wrong_audience",
        401,
        "the token's aud does not include the provider's audience",
        "ask the issuer for a token for this audience",
    ),
    reason(
        "jwt_missing_claim",
        401,
        "the token lacks a claim the provider requires",
        "ask the issuer for a token with the claim",
    ),
    reason(
        "jwt_bad_consumer_claim",
        401,
        "the claim that names the consumer is missing or not a string",
        "operator: the provider's consumer_claim",
    ),
    reason(
        "jwt_keys_unavailable",
        503,
        "the provider's remote JWKS has not been fetched yet or cannot be",
        "retry shortly; operator: check the JWKS cluster and URL",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::JwtRejection;
    use crate::{AuthError, IpDenial, Require};

    /// One of each refusal; the match below has no catch-all, so a new variant must be listed here.
    fn samples() -> Vec<AuthError> {
        let jwt = [
            JwtRejection::Malformed("x"),
            JwtRejection::TooLarge { max: 1 },
            JwtRejection::AlgorithmNotAllowed("none".into()),
            JwtRejection::UnknownKey,
            JwtRejection::BadSignature,
            JwtRejection::Expired,
            JwtRejection::NotYetValid,
            JwtRejection::WrongIssuer,
            JwtRejection::WrongAudience,
            JwtRejection::MissingClaim("sub".into()),
            JwtRejection::BadConsumerClaim,
            JwtRejection::KeysUnavailable,
        ];
        for rejection in &jwt {
            match rejection {
                JwtRejection::Malformed(_)
                | JwtRejection::TooLarge { .. }
                | JwtRejection::AlgorithmNotAllowed(_)
                | JwtRejection::UnknownKey
                | JwtRejection::BadSignature
                | JwtRejection::Expired
                | JwtRejection::NotYetValid
                | JwtRejection::WrongIssuer
                | JwtRejection::WrongAudience
                | JwtRejection::MissingClaim(_)
                | JwtRejection::BadConsumerClaim
                | JwtRejection::KeysUnavailable => {}
            }
        }
        let mut all = vec![
            AuthError::MissingCredentials(Require::Any),
            AuthError::InvalidApiKey,
            AuthError::ExpiredApiKey { key_id: "k".into() },
            AuthError::ForbiddenConsumer { consumer: "c".into() },
            AuthError::KeyRouteScope { consumer: "c".into(), key_id: "k".into() },
            AuthError::ForbiddenModel { consumer: "c".into(), key_id: "k".into(), model: "m".into() },
            AuthError::IpDenied(IpDenial::NotAllowed),
            AuthError::IpDenied(IpDenial::UnknownAddress),
            AuthError::MethodNotAllowedForConsumer { consumer: "c".into(), method: "POST".into() },
        ];
        all.extend(jwt.into_iter().map(AuthError::Jwt));
        for error in &all {
            match error {
                AuthError::MissingCredentials(_)
                | AuthError::InvalidApiKey
                | AuthError::ExpiredApiKey { .. }
                | AuthError::Jwt(_)
                | AuthError::ForbiddenConsumer { .. }
                | AuthError::KeyRouteScope { .. }
                | AuthError::ForbiddenModel { .. }
                | AuthError::IpDenied(_)
                | AuthError::MethodNotAllowedForConsumer { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_refusal_names_a_documented_reason_with_its_status() {
        let samples = samples();
        for error in &samples {
            let reason = REASONS.iter().find(|r| r.code == error.code());
            let reason = reason.unwrap_or_else(|| panic!("{:?} is not in REASONS", error.code()));
            assert_eq!(reason.status, error.status(), "{error:?}");
            assert_eq!(error.to_reply().reason(), Some(error.code()));
        }
        for reason in REASONS {
            assert!(samples.iter().any(|e| e.code() == reason.code), "{} is never produced", reason.code);
        }
    }
}

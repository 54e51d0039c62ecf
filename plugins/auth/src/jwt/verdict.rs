use std::time::SystemTime;

use tollgate_core::OutboundCall;

/// What `JwtProviders::verify` decided about one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtVerdict {
    Valid(VerifiedToken),
    Rejected(JwtRejection),
    /// The provider's keys must be fetched before this token can be judged, and this worker won the right
    /// to fetch them. Pause the request, perform `fetch.call`, hand the outcome to
    /// `JwtProviders::on_jwks_response`, then call `verify` again (which will not ask twice: a second
    /// attempt within `min_refresh_interval_s` ends in a rejection instead).
    NeedsKeys(JwksFetch),
}

/// A token whose signature and claims checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The provider that vouched for it.
    pub provider: String,
    /// The value of the provider's `consumer_claim`.
    pub consumer: String,
    /// Upstream headers from `claims_to_headers`, ordered by claim name (claims the token lacks, or whose
    /// value cannot be a header value, are left out).
    pub headers: Vec<(String, String)>,
    /// The token's `exp`.
    pub expires_at: SystemTime,
}

/// A JWKS download for one provider, to be made with proxy-wasm `http_call`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksFetch {
    pub provider: String,
    pub call: OutboundCall,
}

/// Why a token was refused. The messages never quote the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token is longer than {max} bytes")]
    TooLarge { max: usize },
    /// The header's `alg`, when it is a known name (`"none"` included); `"unsupported"` otherwise.
    #[error("token algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("no key matches the token's key id and algorithm")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token lacks the required claim {0:?}")]
    MissingClaim(String),
    #[error("token consumer claim is not a non-empty string")]
    BadConsumerClaim,
    /// Remote keys were never fetched, or the last good copy is older than `max_stale_s`.
    #[error("signing keys are unavailable")]
    KeysUnavailable,
}

impl JwtRejection {
    /// A stable machine-readable code for error bodies, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            JwtRejection::Malformed(_) => "jwt_malformed",
            JwtRejection::TooLarge { .. } => "jwt_too_large",
            JwtRejection::AlgorithmNotAllowed(_) => "jwt_algorithm_not_allowed",
            JwtRejection::UnknownKey => "jwt_unknown_key",
            JwtRejection::BadSignature => "jwt_bad_signature",
            JwtRejection::Expired => "jwt_expired",
            JwtRejection::NotYetValid => "jwt_not_yet_valid",
            JwtRejection::WrongIssuer => "jwt_wrong_issuer",
            JwtRejection::WrongAudience => "jwt_wrong_audience",
            JwtRejection::MissingClaim(_) => "jwt_missing_claim",
            JwtRejection::BadConsumerClaim => "jwt_bad_consumer_claim",
            JwtRejection::KeysUnavailable => "jwt_keys_unavailable",
        }
    }

    /// The HTTP status to answer with: the client's token is at fault (401) unless the keys to judge it
    /// are missing (503).
    pub fn status(&self) -> u16 {
        match self {
            JwtRejection::KeysUnavailable => 503,
            _ => 401,
        }
    }

    /// Expired tokens deserve a distinct hint to clients (refresh rather than re-authenticate).
    pub fn is_expired(&self) -> bool {
        matches!(self, JwtRejection::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_are_stable() {
        assert_eq!(JwtRejection::Expired.code(), "jwt_expired");
        assert!(JwtRejection::Expired.is_expired());
        assert!(!JwtRejection::NotYetValid.is_expired());
        assert_eq!(JwtRejection::BadSignature.status(), 401);
        assert_eq!(JwtRejection::KeysUnavailable.status(), 503);
        assert_eq!(
            JwtRejection::MissingClaim("sub".into()).to_string(),
            "token lacks the required claim \"sub\""
        );
        assert_eq!(JwtRejection::TooLarge { max: 8192 }.code(), "jwt_too_large");
    }
}

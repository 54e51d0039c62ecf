//! Authentication for Tollgate: API keys (stored as SHA-256 hashes) and JWTs (inline or remote JWKS),
//! each mapped to a consumer, plus per-route rules saying which credentials and which consumers a route
//! accepts (credentials, consumers, client IP addresses, per-consumer methods). Owns the `auth` config
//! section.
//!
//! Both kinds of credential may arrive as `Authorization: Bearer`: a value shaped like a JWT (three
//! dot-separated base64url segments) is verified as a JWT, anything else is looked up as an API key.

mod api_keys;
mod authenticator;
mod client_ip;
mod config;
mod consumer_methods;
mod error;
mod issuers;
pub mod jwt;
mod keygen;
pub mod metrics;
mod reasons;
mod routes;
mod sources;

pub use api_keys::RawApiKey;
pub use authenticator::{Auth, AuthDecision, Authorized, Consumer, Via};
pub use client_ip::{IpDenial, RawClientAddress, RawIpRules};
pub use config::{RawAuthConfig, RawConsumer, DEFAULT_CONSUMER_HEADER};
pub use consumer_methods::RawConsumerMethods;
pub use error::AuthError;
#[cfg(feature = "keygen")]
pub use keygen::keygen;
pub use keygen::{GeneratedKey, KEY_PREFIX};
pub use reasons::REASONS;
pub use routes::{RawRoute, Require, RouteId};
pub use sources::RawCredentialSource;

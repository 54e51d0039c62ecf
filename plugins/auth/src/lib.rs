//! Authentication for Tollgate: API keys (stored as SHA-256 hashes) and JWTs (inline or remote JWKS),
//! each mapped to a consumer, plus per-route rules saying which credentials and which consumers a route
//! accepts. Owns the `auth` config section.

pub mod jwt;

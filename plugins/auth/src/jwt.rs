//! JWT verification (jsonwebtoken), JWKS key sources and caches, and the verified-token cache.

//! JWTs through the authenticator, with HS256 tokens minted here (the `jwt` module has its own, deeper tests).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tollgate_core::testing::MemoryHost;
use tollgate_core::{Clock, ConfigPath, Headers};

use super::*;
use crate::config::RawAuthConfig;
use crate::metrics::{ALLOWED, EXPIRED, INVALID, UNAVAILABLE};

const CORP_SECRET: &str = "corp-secret-corp-secret-corp-secret!";
const PARTNER_SECRET: &str = "partner-secret-partner-secret-partner";
const ALICE_KEY: &str = "tg_alice_secret";

fn auth() -> Auth {
    let config = json!({
        "consumers": [
            {"name": "alice", "group": "gold", "api_keys": [{"id": "k-alice", "sha256": hex::encode(crate::api_keys::digest(ALICE_KEY))}]},
            {"name": "carol", "group": "silver"}
        ],
        "jwt_providers": [
            {"name": "corp", "issuer": "https://corp.example", "algorithms": ["HS256"],
             "keys": {"secret": CORP_SECRET, "secret_encoding": "utf8"}, "claims_to_headers": {"email": "x-user-email"}},
            {"name": "partner", "issuer": "https://partner.example", "algorithms": ["HS256"],
             "keys": {"secret": PARTNER_SECRET, "secret_encoding": "utf8"}},
            {"name": "idp", "algorithms": ["RS256"],
             "keys": {"remote": {"cluster": "idp", "authority": "idp.example", "path": "/jwks"}}}
        ],
        "routes": [
            {"path_prefix": "/keys/", "require": "api_key"},
            {"path_prefix": "/corp/", "require": "jwt", "jwt_providers": ["corp"]},
            {"path_prefix": "/gold/", "groups": ["gold"]},
            {"path_prefix": "/idp/", "require": "jwt", "jwt_providers": ["idp"]}
        ]
    });
    let raw: RawAuthConfig = serde_json::from_value(config).unwrap();
    Auth::compile(raw, &ConfigPath::root().field("auth")).unwrap()
}

fn now(host: &MemoryHost) -> u64 {
    host.now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn mint(host: &MemoryHost, issuer: &str, secret: &str, claims: serde_json::Value) -> String {
    let mut all = json!({"iss": issuer, "sub": "alice", "exp": now(host) + 600});
    if let (Some(all), serde_json::Value::Object(extra)) = (all.as_object_mut(), claims) {
        all.extend(extra);
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &all, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap()
}

fn corp(host: &MemoryHost, claims: serde_json::Value) -> String {
    mint(host, "https://corp.example", CORP_SECRET, claims)
}

fn bearer(path: &str, token: &str) -> RequestHead {
    RequestHead::from_pairs([
        (":method", "POST"),
        (":path", path),
        ("authorization", &format!("Bearer {token}")),
    ])
}

fn decide(head: &RequestHead, host: &MemoryHost) -> AuthDecision {
    auth().authenticate(head, host.ports())
}

fn denied(decision: AuthDecision) -> AuthError {
    match decision {
        AuthDecision::Deny(error) => error,
        other => panic!("expected deny, got {other:?}"),
    }
}

fn allowed(decision: AuthDecision) -> Authorized {
    match decision {
        AuthDecision::Allow(authorized) => authorized,
        other => panic!("expected allow, got {other:?}"),
    }
}

#[test]
fn a_valid_jwt_identifies_a_declared_consumer_and_sets_claim_headers() {
    let host = MemoryHost::default();
    let token = corp(&host, json!({"email": "alice@corp.example"}));
    let head = bearer("/v1/chat/completions", &token);
    let ok = allowed(decide(&head, &host));
    assert_eq!(
        ok.consumer,
        Some(Consumer { name: "alice".into(), group: Some("gold".into()), via: Via::Jwt("corp".into()) })
    );
    let mut up: Headers = head.headers.clone();
    ok.edits.apply_to(&mut up);
    assert_eq!(up.get("authorization"), None);
    assert_eq!(up.get("x-tollgate-consumer"), Some("alice"));
    assert_eq!(up.get("x-user-email"), Some("alice@corp.example"));
    assert!(ok.may_use_model("any-model"));
    assert_eq!(host.metric(ALLOWED), 1);
    assert_eq!(host.metric("tollgate_auth.consumer.alice.allowed"), 1);
}

#[test]
fn an_undeclared_subject_has_no_group_and_is_counted_per_provider() {
    let host = MemoryHost::default();
    let token = corp(&host, json!({"sub": "dave@corp.example"}));
    let ok = allowed(decide(&bearer("/v1/x", &token), &host));
    assert_eq!(
        ok.consumer.as_ref().map(|c| (c.name.as_str(), c.group.clone())),
        Some(("dave@corp.example", None))
    );
    assert_eq!(host.metric("tollgate_auth.jwt.corp.allowed"), 1);
    let error = denied(decide(&bearer("/gold/x", &token), &host));
    assert_eq!((error.status(), error.code()), (403, "consumer_not_allowed"));
}

#[test]
fn spoofed_claim_headers_are_removed_even_when_the_claim_is_absent() {
    let host = MemoryHost::default();
    let mut head = bearer("/v1/x", &corp(&host, json!({})));
    head.headers.append("x-user-email", "ceo@corp.example");
    let ok = allowed(decide(&head, &host));
    let mut up = head.headers.clone();
    ok.edits.apply_to(&mut up);
    assert_eq!(up.get("x-user-email"), None);
}

#[test]
fn an_expired_jwt_is_401_jwt_expired_with_an_invalid_token_challenge() {
    let host = MemoryHost::default();
    let token = corp(&host, json!({"exp": now(&host) - 3600}));
    let error = denied(decide(&bearer("/v1/x", &token), &host));
    assert_eq!((error.status(), error.code()), (401, "jwt_expired"));
    let reply = error.to_reply();
    assert!(reply
        .headers
        .contains(&("www-authenticate".into(), r#"Bearer realm="tollgate", error="invalid_token""#.into())));
    assert!(!String::from_utf8_lossy(&reply.body).contains(&token));
    assert_eq!(host.metric(EXPIRED), 1);
}

#[test]
fn a_forged_jwt_is_401() {
    let host = MemoryHost::default();
    let forged = mint(&host, "https://corp.example", PARTNER_SECRET, json!({}));
    let error = denied(decide(&bearer("/v1/x", &forged), &host));
    assert_eq!((error.status(), error.code()), (401, "jwt_bad_signature"));
    assert_eq!(host.metric(INVALID), 1);
}

#[test]
fn each_token_is_verified_by_its_issuers_provider() {
    let host = MemoryHost::default();
    let token = mint(&host, "https://partner.example", PARTNER_SECRET, json!({}));
    let ok = allowed(decide(&bearer("/v1/x", &token), &host));
    assert_eq!(ok.consumer.unwrap().via, Via::Jwt("partner".into()));
    // The remote provider accepts any issuer, yet was never asked, so it did not try to fetch its JWKS.
    assert_eq!(host.metric("tollgate_jwt_rejected_total"), 0);
}

#[test]
fn routes_can_limit_the_providers() {
    let host = MemoryHost::default();
    let partner = mint(&host, "https://partner.example", PARTNER_SECRET, json!({}));
    assert!(matches!(denied(decide(&bearer("/corp/x", &partner), &host)), AuthError::Jwt(_)));
    assert!(matches!(decide(&bearer("/corp/x", &corp(&host, json!({}))), &host), AuthDecision::Allow(_)));
}

#[test]
fn jwt_shaped_bearers_are_not_api_keys_and_vice_versa() {
    let host = MemoryHost::default();
    let error = denied(decide(&bearer("/keys/x", &corp(&host, json!({}))), &host));
    assert_eq!(error.to_string(), "this route requires an API key");
    let error = denied(decide(&bearer("/corp/x", ALICE_KEY), &host));
    assert_eq!(error.to_string(), "this route requires a bearer token (JWT)");
    assert!(matches!(decide(&bearer("/keys/x", ALICE_KEY), &host), AuthDecision::Allow(_)));
}

#[test]
fn without_api_keys_a_bearer_that_is_not_jwt_shaped_is_refused_as_a_jwt() {
    let config = json!({"jwt_providers": [{"name": "corp", "algorithms": ["HS256"],
        "keys": {"secret": CORP_SECRET, "secret_encoding": "utf8"}}]});
    let auth = Auth::compile(serde_json::from_value(config).unwrap(), &ConfigPath::root()).unwrap();
    let host = MemoryHost::default();
    // `alg: none` with the empty signature such tokens carry: two dots, but not three segments.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"alice"}"#);
    let error = denied(auth.authenticate(&bearer("/v1/x", &format!("{header}.{claims}.")), host.ports()));
    assert_eq!((error.status(), error.code()), (401, "jwt_algorithm_not_allowed"));
    let error = denied(auth.authenticate(&bearer("/v1/x", "tg_not_a_jwt"), host.ports()));
    assert_eq!(error.code(), "jwt_malformed");
    // A dedicated API key header is still an API key, and still unknown.
    let mut head = RequestHead::from_pairs([(":method", "GET"), (":path", "/v1/x")]);
    head.headers.append("x-api-key", "tg_whatever");
    assert_eq!(denied(auth.authenticate(&head, host.ports())).code(), "invalid_api_key");
}

#[test]
fn an_api_key_is_preferred_when_both_are_presented() {
    let host = MemoryHost::default();
    let mut head = bearer("/v1/x", &corp(&host, json!({"sub": "carol"})));
    head.headers.append("x-api-key", ALICE_KEY);
    let ok = allowed(decide(&head, &host));
    assert_eq!(ok.consumer.unwrap().via, Via::ApiKey("k-alice".into()));
}

#[test]
fn a_provider_without_keys_pauses_for_a_fetch_then_reports_unavailable() {
    let host = MemoryHost::default();
    let auth = auth();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": "alice", "exp": now(&host) + 60}).to_string());
    let head = bearer("/idp/x", &format!("{header}.{claims}.c2ln"));
    let AuthDecision::NeedsKeys(fetch) = auth.authenticate(&head, host.ports()) else {
        panic!("expected a fetch")
    };
    assert_eq!(
        (fetch.provider.as_str(), fetch.call.cluster.as_str(), fetch.call.path.as_str()),
        ("idp", "idp", "/jwks")
    );
    assert_eq!(host.metric(ALLOWED) + host.metric(INVALID), 0);
    // Without an answer, the next attempt cannot judge the token: the gateway's fault, not the client's.
    let error = denied(auth.authenticate(&head, host.ports()));
    assert_eq!((error.status(), error.code()), (503, "jwt_keys_unavailable"));
    let reply = error.to_reply();
    assert!(reply.headers.iter().all(|(n, _)| n != "www-authenticate"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()["error"]["type"],
        "api_error"
    );
    assert_eq!(host.metric(UNAVAILABLE), 1);
}

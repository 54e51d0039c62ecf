use std::time::Duration;

use tollgate_core::testing::MemoryHost;
use tollgate_core::{ConfigPath, Headers};

use super::*;
use crate::config::RawAuthConfig;
use crate::metrics::{ALLOWED, ANONYMOUS, EXPIRED, FORBIDDEN, INVALID, MISSING};

const ALICE: &str = "tg_alice_secret";
const ALICE_OLD: &str = "tg_alice_old";
const ALICE_CHAT: &str = "tg_alice_chat";
const BOB: &str = "tg_bob_secret";

fn sha(key: &str) -> String {
    hex::encode(crate::api_keys::digest(key))
}

fn auth_with(extra: serde_json::Value) -> Auth {
    let mut config = serde_json::json!({
        "consumers": [
            {"name": "alice", "group": "gold", "api_keys": [
                {"id": "k-alice", "sha256": sha(ALICE)},
                // MemoryHost starts at 2023-11-14T22:13:20Z.
                {"id": "k-alice-old", "sha256": sha(ALICE_OLD), "expires_at": "2023-11-14T22:13:30Z"},
                {"id": "k-alice-chat", "sha256": sha(ALICE_CHAT), "routes": ["/v1/chat/"], "models": ["gpt-4o"]}
            ]},
            {"name": "bob", "group": "silver", "api_keys": [{"id": "k-bob", "sha256": sha(BOB)}]}
        ],
        "api_key_sources": [
            {"header": "authorization", "scheme": "Bearer"}, {"header": "x-api-key"}, {"header": "api-key"},
            {"query": "api_key"}, {"cookie": "tollgate_key"}
        ],
        "routes": [
            {"path_prefix": "/public/", "require": "none"},
            {"path_prefix": "/gold/", "groups": ["gold"]},
            {"path_prefix": "/bob/", "consumers": ["bob"]},
            {"path_prefix": "/admin/", "methods": ["DELETE"], "consumers": ["bob"]}
        ]
    });
    if let (Some(base), serde_json::Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    let raw: RawAuthConfig = serde_json::from_value(config).unwrap();
    Auth::compile(raw, &ConfigPath::root().field("auth")).unwrap()
}

fn auth() -> Auth {
    auth_with(serde_json::json!({}))
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut head = RequestHead::from_pairs([(":method", method), (":path", path)]);
    for (n, v) in headers {
        head.headers.append(n, *v);
    }
    head
}

fn post(path: &str, headers: &[(&str, &str)]) -> RequestHead {
    request("POST", path, headers)
}

fn allowed(decision: AuthDecision) -> Authorized {
    match decision {
        AuthDecision::Allow(authorized) => authorized,
        other => panic!("expected allow, got {other:?}"),
    }
}

fn denied(decision: AuthDecision) -> AuthError {
    match decision {
        AuthDecision::Deny(error) => error,
        other => panic!("expected deny, got {other:?}"),
    }
}

/// The head as the upstream would see it: edits applied, `:path` included.
fn upstream(head: &RequestHead, edits: &HeaderEdits) -> Headers {
    let mut headers = head.headers.clone();
    headers.append(":path", head.path.clone());
    edits.apply_to(&mut headers);
    headers
}

#[test]
fn a_bearer_key_identifies_its_consumer() {
    let host = MemoryHost::default();
    let head = post("/v1/chat/completions", &[("authorization", "Bearer tg_alice_secret")]);
    let ok = allowed(auth().authenticate(&head, host.ports()));
    let consumer = ok.consumer.unwrap();
    assert_eq!(consumer.name, "alice");
    assert_eq!(consumer.group.as_deref(), Some("gold"));
    assert_eq!(consumer.via, Via::ApiKey("k-alice".into()));
}

#[test]
fn every_configured_source_carries_a_key() {
    let host = MemoryHost::default();
    let auth = auth();
    let heads = [
        post("/v1/x", &[("x-api-key", BOB)]),
        post("/v1/x", &[("Api-Key", BOB)]),
        post("/v1/x?api_key=tg_bob_secret", &[]),
        post("/v1/x", &[("cookie", "theme=dark; tollgate_key=tg_bob_secret")]),
    ];
    for head in heads {
        let ok = allowed(auth.authenticate(&head, host.ports()));
        assert_eq!(ok.consumer.unwrap().via, Via::ApiKey("k-bob".into()), "{head:?}");
    }
    assert_eq!(host.metric(ALLOWED), 4);
}

#[test]
fn the_first_source_in_config_order_wins() {
    let host = MemoryHost::default();
    let head = post("/v1/x", &[("x-api-key", BOB), ("authorization", "Bearer tg_alice_secret")]);
    assert_eq!(allowed(auth().authenticate(&head, host.ports())).consumer.unwrap().name, "alice");
    // A presented but wrong credential is not skipped in favour of a later one.
    let head = post("/v1/x", &[("x-api-key", BOB), ("authorization", "Bearer tg_wrong")]);
    assert!(matches!(denied(auth().authenticate(&head, host.ports())), AuthError::InvalidApiKey));
}

#[test]
fn the_default_sources_are_bearer_x_api_key_and_api_key() {
    let host = MemoryHost::default();
    let auth = auth_with(serde_json::json!({"api_key_sources": null}));
    for (name, value) in [("authorization", "Bearer tg_bob_secret"), ("x-api-key", BOB), ("api-key", BOB)] {
        assert!(matches!(
            auth.authenticate(&post("/v1/x", &[(name, value)]), host.ports()),
            AuthDecision::Allow(_)
        ));
    }
    let head = post("/v1/x?api_key=tg_bob_secret", &[]);
    assert!(matches!(
        denied(auth.authenticate(&head, host.ports())),
        AuthError::MissingCredentials(Require::Any)
    ));
}

#[test]
fn no_credentials_is_401_missing() {
    let host = MemoryHost::default();
    let head = post("/v1/x", &[("authorization", "Basic dXNlcjpwYXNz")]);
    let error = denied(auth().authenticate(&head, host.ports()));
    assert_eq!((error.status(), error.code()), (401, "missing_credentials"));
    assert_eq!(host.metric(MISSING), 1);
    assert_eq!(host.metric(ALLOWED), 0);
}

#[test]
fn an_unknown_key_is_401_invalid_and_never_echoed() {
    let host = MemoryHost::default();
    let head = post("/v1/x", &[("authorization", "Bearer tg_guess_1234")]);
    let error = denied(auth().authenticate(&head, host.ports()));
    assert_eq!((error.status(), error.code()), (401, "invalid_api_key"));
    let reply = error.to_reply();
    assert!(!String::from_utf8_lossy(&reply.body).contains("tg_guess_1234"));
    assert!(reply
        .headers
        .contains(&("www-authenticate".into(), r#"Bearer realm="tollgate", error="invalid_token""#.into())));
    assert_eq!(host.metric(INVALID), 1);
}

#[test]
fn keys_work_until_their_expiry_and_not_after() {
    let host = MemoryHost::default();
    let auth = auth();
    let head = post("/v1/x", &[("x-api-key", ALICE_OLD)]);
    assert!(matches!(auth.authenticate(&head, host.ports()), AuthDecision::Allow(_)));
    host.advance(Duration::from_secs(9));
    assert!(matches!(auth.authenticate(&head, host.ports()), AuthDecision::Allow(_)));
    host.advance(Duration::from_secs(1));
    let error = denied(auth.authenticate(&head, host.ports()));
    assert_eq!((error.status(), error.code()), (401, "expired_api_key"));
    assert_eq!(error.to_string(), "API key k-alice-old has expired");
    assert_eq!(host.metric(EXPIRED), 1);
    assert_eq!(host.metric(ALLOWED), 2);
}

#[test]
fn group_and_consumer_rules_give_403() {
    let host = MemoryHost::default();
    let auth = auth();
    assert!(matches!(
        auth.authenticate(&post("/gold/x", &[("x-api-key", ALICE)]), host.ports()),
        AuthDecision::Allow(_)
    ));
    let error = denied(auth.authenticate(&post("/gold/x", &[("x-api-key", BOB)]), host.ports()));
    assert_eq!((error.status(), error.code()), (403, "consumer_not_allowed"));
    assert_eq!(error.to_string(), "consumer bob may not use this route");
    assert!(matches!(
        auth.authenticate(&post("/bob/x", &[("x-api-key", BOB)]), host.ports()),
        AuthDecision::Allow(_)
    ));
    assert!(matches!(
        denied(auth.authenticate(&post("/bob/x", &[("x-api-key", ALICE)]), host.ports())),
        AuthError::ForbiddenConsumer { .. }
    ));
    assert_eq!(host.metric(FORBIDDEN), 2);
    assert_eq!(host.metric("tollgate_auth.consumer.bob.forbidden"), 1);
    assert_eq!(host.metric("tollgate_auth.consumer.alice.forbidden"), 1);
    assert_eq!(host.metric("tollgate_auth.consumer.alice.allowed"), 1);
    assert_eq!(host.metric("tollgate_auth.consumer.bob.allowed"), 1);
}

#[test]
fn rules_can_be_limited_to_methods() {
    let host = MemoryHost::default();
    let auth = auth();
    let del = request("DELETE", "/admin/users", &[("x-api-key", ALICE)]);
    assert!(matches!(denied(auth.authenticate(&del, host.ports())), AuthError::ForbiddenConsumer { .. }));
    let get = request("GET", "/admin/users", &[("x-api-key", ALICE)]);
    assert!(matches!(auth.authenticate(&get, host.ports()), AuthDecision::Allow(_)));
}

#[test]
fn dot_segments_do_not_escape_a_rule() {
    let host = MemoryHost::default();
    let auth = auth();
    let head = post("/public/../gold/x", &[("x-api-key", BOB)]);
    assert!(matches!(denied(auth.authenticate(&head, host.ports())), AuthError::ForbiddenConsumer { .. }));
    let head = post("/public/%2e%2e/gold/x", &[]);
    assert!(matches!(denied(auth.authenticate(&head, host.ports())), AuthError::MissingCredentials(_)));
}

#[test]
fn key_route_scopes_are_checked_at_header_time() {
    let host = MemoryHost::default();
    let auth = auth();
    let ok = post("/v1/chat/completions", &[("x-api-key", ALICE_CHAT)]);
    assert!(matches!(auth.authenticate(&ok, host.ports()), AuthDecision::Allow(_)));
    let error =
        denied(auth.authenticate(&post("/v1/embeddings", &[("x-api-key", ALICE_CHAT)]), host.ports()));
    assert_eq!((error.status(), error.code()), (403, "key_scope_route"));
    assert_eq!(error.to_string(), "API key k-alice-chat is not allowed on this route");
    let sneaky = post("/v1/chat/../embeddings", &[("x-api-key", ALICE_CHAT)]);
    assert!(matches!(denied(auth.authenticate(&sneaky, host.ports())), AuthError::KeyRouteScope { .. }));
}

#[test]
fn model_scopes_are_checked_once_the_body_is_known() {
    let host = MemoryHost::default();
    let auth = auth();
    let scoped =
        allowed(auth.authenticate(&post("/v1/chat/completions", &[("x-api-key", ALICE_CHAT)]), host.ports()));
    assert!(scoped.may_use_model("gpt-4o"));
    assert!(!scoped.may_use_model("gpt-4o-mini"));
    assert!(auth.check_model(&scoped, "gpt-4o", host.ports()).is_ok());
    let error = auth.check_model(&scoped, "o1-preview", host.ports()).unwrap_err();
    assert_eq!((error.status(), error.code()), (403, "key_scope_model"));
    assert_eq!(error.to_string(), r#"API key k-alice-chat may not use model "o1-preview""#);
    assert_eq!(host.metric(FORBIDDEN), 1);
    assert_eq!(host.metric("tollgate_auth.consumer.alice.forbidden"), 1);
    let unscoped =
        allowed(auth.authenticate(&post("/v1/chat/completions", &[("x-api-key", ALICE)]), host.ports()));
    assert!(unscoped.may_use_model("anything"));
}

#[test]
fn credentials_and_spoofed_identity_are_stripped() {
    let host = MemoryHost::default();
    let head = post(
        "/v1/x?a=1&api_key=tg_stale",
        &[
            ("authorization", "Bearer tg_alice_secret"),
            ("x-api-key", "tg_other"),
            ("api-key", "tg_other"),
            ("cookie", "tollgate_key=tg_other; theme=dark"),
            ("X-Tollgate-Consumer", "root"),
            ("content-type", "application/json"),
        ],
    );
    let ok = allowed(auth().authenticate(&head, host.ports()));
    let up = upstream(&head, &ok.edits);
    assert_eq!(up.get("authorization"), None);
    assert_eq!(up.get("x-api-key"), None);
    assert_eq!(up.get("api-key"), None);
    assert_eq!(up.get("cookie"), Some("theme=dark"));
    assert_eq!(up.get(":path"), Some("/v1/x?a=1"));
    assert_eq!(up.get_all("x-tollgate-consumer").collect::<Vec<_>>(), ["alice"]);
    assert_eq!(up.get("content-type"), Some("application/json"));
}

#[test]
fn untouched_paths_and_cookies_are_not_rewritten() {
    let host = MemoryHost::default();
    let head = post("/v1/x?a=1", &[("x-api-key", BOB), ("cookie", "theme=dark")]);
    let ok = allowed(auth().authenticate(&head, host.ports()));
    assert!(ok.edits.set.iter().all(|(n, _)| n != ":path" && n != "cookie"));
}

#[test]
fn open_routes_pass_credentials_but_not_a_spoofed_consumer() {
    let host = MemoryHost::default();
    let head =
        post("/public/docs", &[("authorization", "Bearer whatever"), ("x-tollgate-consumer", "alice")]);
    let ok = allowed(auth().authenticate(&head, host.ports()));
    assert_eq!(ok.consumer, None);
    let up = upstream(&head, &ok.edits);
    assert_eq!(up.get("x-tollgate-consumer"), None);
    assert_eq!(up.get("authorization"), Some("Bearer whatever"));
    assert_eq!(host.metric(ANONYMOUS), 1);
    assert_eq!(host.metric(ALLOWED), 0);
}

#[test]
fn require_api_key_routes_ignore_nothing_but_need_a_key() {
    let host = MemoryHost::default();
    let auth = auth_with(serde_json::json!({"routes": [{"path_prefix": "/", "require": "api_key"}]}));
    assert!(matches!(
        auth.authenticate(&post("/x", &[("x-api-key", BOB)]), host.ports()),
        AuthDecision::Allow(_)
    ));
    let error = denied(auth.authenticate(&post("/x", &[]), host.ports()));
    assert_eq!(error.to_string(), "this route requires an API key");
}

#[test]
fn with_nothing_configured_auth_is_off() {
    let host = MemoryHost::default();
    let auth = Auth::compile(RawAuthConfig::default(), &ConfigPath::root().field("auth")).unwrap();
    let ok = allowed(auth.authenticate(&post("/v1/x", &[("authorization", "Bearer x")]), host.ports()));
    assert_eq!(ok.consumer, None);
    assert!(ok.edits.remove.is_empty(), "nothing to remove: {:?}", ok.edits.remove);
    // A client's own consumer header never reaches the upstream.
    let forged = post("/v1/x", &[("X-Tollgate-Consumer", "admin")]);
    let ok = allowed(auth.authenticate(&forged, host.ports()));
    assert_eq!(ok.edits.remove, ["x-tollgate-consumer"]);
}

#[test]
fn the_consumer_header_can_be_renamed() {
    let host = MemoryHost::default();
    let auth = auth_with(serde_json::json!({"consumer_header": "X-Consumer"}));
    let head = post("/v1/x", &[("x-api-key", BOB), ("x-consumer", "alice"), ("x-tollgate-consumer", "kept")]);
    let up = upstream(&head, &allowed(auth.authenticate(&head, host.ports())).edits);
    assert_eq!(up.get_all("x-consumer").collect::<Vec<_>>(), ["bob"]);
    assert_eq!(up.get("x-tollgate-consumer"), Some("kept"));
}

#[test]
fn a_denial_becomes_an_openai_error_reply() {
    let host = MemoryHost::default();
    let reply = denied(auth().authenticate(&post("/v1/x", &[]), host.ports())).to_reply();
    assert_eq!(reply.status, 401);
    assert!(reply.headers.contains(&("www-authenticate".into(), r#"Bearer realm="tollgate""#.into())));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_eq!(body["error"]["code"], "missing_credentials");
}

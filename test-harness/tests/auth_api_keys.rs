//! API keys through the real `dist/tollgate.wasm`: every configured place a key can travel in, what the
//! upstream sees (the consumer, never the credential), the refusals clients get, and the auth metrics.

// Test helpers: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "auth_support/idp.rs"]
mod idp;

use std::time::Duration;

use serde_json::json;
use tollgate_harness::host::{Request, Response, Vm};

use idp::{api_key, assert_refused, error};

/// alice (gold) and bob (silver) have working keys; carol's expired before the virtual clock starts
/// (2024-01-01T00:00:00Z); dave's expires one minute in. `/admin/` is for the gold group only.
fn config() -> String {
    let [alice, bob, mut carol, mut dave] = [1, 2, 3, 4].map(|seed| api_key(seed).config_entry());
    carol["expires_at"] = json!("2023-12-31T23:59:59Z");
    dave["expires_at"] = json!("2024-01-01T00:01:00Z");
    json!({"auth": {
        "consumers": [
            {"name": "alice", "group": "gold", "api_keys": [alice]},
            {"name": "bob", "group": "silver", "api_keys": [bob]},
            {"name": "carol", "api_keys": [carol]},
            {"name": "dave", "api_keys": [dave]}
        ],
        "api_key_sources": [
            {"header": "authorization", "scheme": "Bearer"},
            {"header": "x-api-key"},
            {"query": "api_key"},
            {"cookie": "tg_key"}
        ],
        "routes": [{"path_prefix": "/admin/", "groups": ["gold"]}]
    }})
    .to_string()
}

fn vm() -> Vm {
    idp::host().plugin(config()).start().unwrap()
}

#[test]
fn a_valid_key_in_any_configured_place_is_forwarded_as_the_consumer_without_the_credential() {
    let mut vm = vm();
    let key = api_key(1).key;
    let cases = [
        ("bearer", Request::get("/v1/models").header("authorization", &format!("Bearer {key}"))),
        ("x-api-key", Request::get("/v1/models").header("x-api-key", &key)),
        ("query", Request::get(&format!("/v1/models?limit=5&api_key={key}&order=asc"))),
        (
            "cookie",
            Request::get("/v1/models").header("cookie", &format!("theme=dark; tg_key={key}; lang=en")),
        ),
    ];
    for (place, request) in cases {
        let ex = vm
            .send(request.header("x-tollgate-consumer", "mallory"))
            .respond_with(Response::status(200).body("ok"))
            .run()
            .unwrap();
        assert_eq!(ex.downstream.status, 200, "{place}: {}", ex.downstream.body_str());
        assert_eq!(ex.downstream.body_str(), "ok");
        let up = ex.upstream.expect("forwarded");
        assert_eq!(up.header("x-tollgate-consumer"), Some("alice"), "{place}: the client's copy is replaced");
        assert_eq!(up.headers.iter().filter(|(k, _)| k == "x-tollgate-consumer").count(), 1, "{place}");
        assert_eq!(up.header("authorization"), None, "{place}");
        assert_eq!(up.header("x-api-key"), None, "{place}");
        assert!(!up.path.contains(&key), "{place}: key left in the path {}", up.path);
        assert!(up.headers.iter().all(|(_, v)| !v.contains(&key)), "{place}: key left in {:?}", up.headers);
        match place {
            "query" => assert_eq!(up.path, "/v1/models?limit=5&order=asc"),
            "cookie" => assert_eq!(up.header("cookie"), Some("theme=dark; lang=en")),
            _ => assert_eq!(up.path, "/v1/models"),
        }
    }
    assert_eq!(vm.metric("tollgate_auth_allowed_total"), Some(4));
    assert_eq!(vm.metric("tollgate_auth.consumer.alice.allowed"), Some(4));
}

#[test]
fn a_request_without_a_key_gets_a_bearer_challenge_and_an_openai_shaped_401() {
    let mut vm = vm();
    // A cookie that is not the key cookie, and a query parameter that is not the key parameter.
    let ex = vm.send(Request::get("/v1/models?key=x").header("cookie", "theme=dark")).run().unwrap();
    assert_refused(&ex, 401, "missing_credentials");
    assert_eq!(ex.downstream.header("www-authenticate"), Some(r#"Bearer realm="tollgate""#));
    let error = error(&ex);
    assert_eq!(error["type"], "authentication_error");
    assert!(error["message"].as_str().unwrap().contains("API key"), "{error}");
    assert_eq!(vm.metric("tollgate_auth_missing_total"), Some(1));
    assert_eq!(vm.metric("tollgate_auth_allowed_total"), None);
}

#[test]
fn an_unknown_key_is_refused_without_echoing_it() {
    let mut vm = vm();
    let wrong = api_key(9).key;
    for request in [
        Request::get("/v1/models").header("x-api-key", &wrong),
        Request::get("/v1/models").header("authorization", &format!("Bearer {wrong}")),
        Request::get(&format!("/v1/models?api_key={wrong}")),
    ] {
        let ex = vm.send(request).run().unwrap();
        assert_refused(&ex, 401, "invalid_api_key");
        assert_eq!(
            ex.downstream.header("www-authenticate"),
            Some(r#"Bearer realm="tollgate", error="invalid_token""#)
        );
        assert!(!ex.downstream.body_str().contains(&wrong), "the key must not be echoed");
    }
    assert_eq!(vm.metric("tollgate_auth_invalid_total"), Some(3));
}

#[test]
fn an_expired_key_is_refused_and_a_key_expires_as_the_clock_moves() {
    let mut vm = vm();
    let ex = vm.send(Request::get("/v1/models").header("x-api-key", &api_key(3).key)).run().unwrap();
    assert_refused(&ex, 401, "expired_api_key");
    assert!(error(&ex)["message"].as_str().unwrap().contains(&api_key(3).id), "names the key id");

    let dave = || Request::get("/v1/models").header("x-api-key", &api_key(4).key);
    let ex = vm.send(dave()).run().unwrap();
    assert_eq!(ex.downstream.status, 200, "valid for its first minute");
    assert_eq!(ex.upstream.unwrap().header("x-tollgate-consumer"), Some("dave"));
    vm.advance(Duration::from_secs(59)).unwrap();
    assert_eq!(vm.send(dave()).run().unwrap().downstream.status, 200);
    vm.advance(Duration::from_secs(1)).unwrap();
    assert_refused(&vm.send(dave()).run().unwrap(), 401, "expired_api_key");

    assert_eq!(vm.metric("tollgate_auth_expired_total"), Some(2));
    assert_eq!(vm.metric("tollgate_auth.consumer.dave.allowed"), Some(2));
}

#[test]
fn a_route_for_another_group_is_forbidden_to_an_authenticated_consumer() {
    let mut vm = vm();
    let ex = vm.send(Request::post("/admin/keys").header("x-api-key", &api_key(2).key)).run().unwrap();
    assert_refused(&ex, 403, "consumer_not_allowed");
    assert_eq!(error(&ex)["type"], "permission_error");
    assert_eq!(ex.downstream.header("www-authenticate"), None, "a 403 carries no challenge");
    // Dot segments cannot walk around the rule.
    let ex = vm.send(Request::get("/v1/../admin/keys").header("x-api-key", &api_key(2).key)).run().unwrap();
    assert_refused(&ex, 403, "consumer_not_allowed");

    let ex = vm.send(Request::post("/admin/keys").header("x-api-key", &api_key(1).key)).run().unwrap();
    assert_eq!(ex.downstream.status, 200, "gold may");
    assert_eq!(ex.upstream.unwrap().header("x-tollgate-consumer"), Some("alice"));

    assert_eq!(vm.metric("tollgate_auth_forbidden_total"), Some(2));
    assert_eq!(vm.metric("tollgate_auth.consumer.bob.forbidden"), Some(2));
    assert_eq!(vm.metric("tollgate_auth.consumer.alice.allowed"), Some(1));
}

#[test]
fn metrics_count_every_outcome_across_workers() {
    let mut workers = idp::host().plugin(config()).workers(2).start_all().unwrap();
    for vm in &mut workers {
        vm.send(Request::get("/v1/models").header("x-api-key", &api_key(1).key)).run().unwrap();
        vm.send(Request::get("/v1/models").header("x-api-key", &api_key(2).key)).run().unwrap();
        vm.send(Request::get("/v1/models")).run().unwrap();
        vm.send(Request::get("/v1/models").header("x-api-key", "tg_nope")).run().unwrap();
        vm.send(Request::get("/admin/").header("x-api-key", &api_key(2).key)).run().unwrap();
    }
    let host = workers[0].host().clone();
    let counts: Vec<Option<i64>> = [
        "tollgate_auth_allowed_total",
        "tollgate_auth_missing_total",
        "tollgate_auth_invalid_total",
        "tollgate_auth_forbidden_total",
        "tollgate_auth.consumer.alice.allowed",
        "tollgate_auth.consumer.bob.allowed",
        "tollgate_auth.consumer.bob.forbidden",
    ]
    .iter()
    .map(|name| host.metric(name))
    .collect();
    assert_eq!(counts, [Some(4), Some(2), Some(2), Some(2), Some(2), Some(2), Some(2)]);
    assert_eq!(host.metric("tollgate_requests_total"), Some(10));
}

#[test]
fn a_model_scoped_key_may_only_name_its_models_in_the_body() {
    let mut scoped = api_key(5).config_entry();
    scoped["models"] = json!(["gpt-4o*"]);
    let config = json!({"auth": {"consumers": [{"name": "erin", "api_keys": [scoped]}]}}).to_string();
    let mut vm = idp::host().plugin(config).start().unwrap();
    let key = api_key(5).key;
    let chat = |model: &str| {
        Request::post("/v1/chat/completions")
            .header("authorization", &format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body_chunks([format!(r#"{{"model":"{model}","#), r#""messages":[]}"#.to_string()])
    };

    let ex = vm.send(chat("gpt-4o-mini")).respond_with(Response::status(200)).run().unwrap();
    let upstream = ex.upstream.expect("an allowed model goes upstream");
    assert_eq!(upstream.header("x-tollgate-consumer"), Some("erin"));
    assert_eq!(upstream.header("authorization"), None);
    assert_eq!(upstream.body_str(), r#"{"model":"gpt-4o-mini","messages":[]}"#);

    let ex = vm.send(chat("claude-3-opus")).respond_with(Response::status(200)).run().unwrap();
    assert!(ex.upstream.is_none(), "a refused model never reaches the upstream");
    assert_refused(&ex, 403, "key_scope_model");
    assert_eq!(vm.metric("tollgate_auth_forbidden_total"), Some(1));
}

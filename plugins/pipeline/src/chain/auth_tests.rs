//! The auth step as the chain runs it: ordering against local replies and header edits, the edits that
//! reach the upstream, denials as replies, and the JWKS call a request waits for.

use tollgate_core::testing::MemoryHost;
use tollgate_core::{BodyVerdict, CallOutcome, Callout, Headers, RequestHead, Verdict};

use crate::Pipeline;

/// SHA-256 of "tg_test_key_alice".
const ALICE_KEY: &str = "tg_test_key_alice";

fn alice_hash() -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(ALICE_KEY.as_bytes()))
}

const BOB_KEY: &str = "tg_test_key_bob";

fn bob_hash() -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(BOB_KEY.as_bytes()))
}

fn pipeline() -> Pipeline {
    let config = serde_json::json!({
        "upstream_headers": {"set": {"x-tollgate": "on", "x-tollgate-consumer": "config-cannot-override"}},
        "local_replies": [{"path_prefix": "/tollgate/ping", "status": 200, "body": "pong"}],
        "auth": {
            "consumers": [
                {"name": "alice", "group": "gold", "api_keys": [{"id": "k1", "sha256": alice_hash()}]},
                {"name": "bob", "group": "silver",
                 "api_keys": [{"id": "k2", "sha256": bob_hash(), "models": ["gpt-4o*"]}]}
            ],
            "jwt_providers": [{
                "name": "corp", "algorithms": ["ES256"],
                "keys": {"remote": {"cluster": "idp", "authority": "idp.example", "path": "/jwks.json"}}
            }],
            "routes": [{"path_prefix": "/admin", "groups": ["silver"]}]
        }
    });
    Pipeline::from_json(config.to_string().as_bytes()).unwrap()
}

fn head(path: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut pairs = vec![(":method", "GET"), (":path", path)];
    pairs.extend_from_slice(headers);
    RequestHead::from_pairs(pairs)
}

fn upstream_headers(verdict: Verdict, head: &RequestHead) -> Headers {
    let Verdict::Continue(edits) = verdict else {
        panic!("expected the request to go upstream: {verdict:?}")
    };
    let mut headers = head.headers.clone();
    edits.apply_to(&mut headers);
    headers
}

fn reply_status(verdict: &Verdict) -> (u16, serde_json::Value) {
    let Verdict::Respond(reply) = verdict else { panic!("expected a local reply: {verdict:?}") };
    (reply.status, serde_json::from_slice(&reply.body).unwrap_or_default())
}

#[test]
fn an_allowed_key_reaches_upstream_as_a_consumer_without_its_credential() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let request = head(
        "/v1/models",
        &[("authorization", &format!("Bearer {ALICE_KEY}")), ("x-tollgate-consumer", "mallory")],
    );
    let headers =
        upstream_headers(pipeline.on_request_headers(&mut stream, &request, host.ports()), &request);
    assert_eq!(headers.get("authorization"), None);
    assert_eq!(headers.get_all("x-tollgate-consumer").collect::<Vec<_>>(), ["alice"]);
    assert_eq!(headers.get("x-tollgate"), Some("on"));
    assert_eq!(pipeline.consumer(&stream).map(|c| c.name.as_str()), Some("alice"));
    assert_eq!(host.metric("tollgate_auth_allowed_total"), 1);
}

#[test]
fn local_replies_need_no_credentials_and_denials_are_replies() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let ping =
        pipeline.on_request_headers(&mut pipeline.stream(), &head("/tollgate/ping", &[]), host.ports());
    assert_eq!(reply_status(&ping).0, 200);

    let missing = pipeline.on_request_headers(&mut pipeline.stream(), &head("/v1/models", &[]), host.ports());
    let (status, body) = reply_status(&missing);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_credentials")));

    let admin = head("/admin/users", &[("x-api-key", ALICE_KEY)]);
    let forbidden = pipeline.on_request_headers(&mut pipeline.stream(), &admin, host.ports());
    let (status, body) = reply_status(&forbidden);
    assert_eq!((status, body["error"]["type"].as_str()), (403, Some("permission_error")));
    assert_eq!(host.metric("tollgate_local_replies_total"), 1, "only configured replies count as such");
}

#[test]
fn a_jwt_without_keys_waits_for_one_jwks_call_then_is_decided_again() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let mut stream = pipeline.stream();
    let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJib2IifQ.c2ln";
    let request = head("/v1/models", &[("authorization", &format!("Bearer {token}"))]);
    let Verdict::Call(Callout::Http(call)) = pipeline.on_request_headers(&mut stream, &request, host.ports())
    else {
        panic!("expected a JWKS call");
    };
    assert_eq!(
        (call.cluster.as_str(), call.path.as_str(), call.authority.as_str()),
        ("idp", "/jwks.json", "idp.example")
    );

    // The JWKS server is down: the stream does not call again, it answers 503 (not the client's fault).
    let failed = CallOutcome::Failed { reason: "timeout".into() };
    let verdict = pipeline.on_call_response(&mut stream, &failed, host.ports());
    let (status, body) = reply_status(&verdict);
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("jwt_keys_unavailable")));
}

#[test]
fn the_root_tick_schedules_the_first_jwks_fetch_once_across_workers() {
    let (pipeline, other_worker, host) = (pipeline(), self::pipeline(), MemoryHost::default());
    assert!(pipeline.tick_period().is_some_and(|p| p.as_secs() <= 1));
    let calls = pipeline.on_tick(host.ports());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].purpose, "jwks:corp");
    assert!(other_worker.on_tick(host.ports()).is_empty(), "the other worker sees the claim in shared data");
}

#[test]
fn without_auth_there_is_no_background_work() {
    let pipeline = Pipeline::from_json(b"{}").unwrap();
    assert_eq!(pipeline.tick_period(), None);
    assert!(pipeline.on_tick(MemoryHost::default().ports()).is_empty());
}

#[test]
fn auth_config_errors_name_their_path() {
    let err = Pipeline::from_json(
        br#"{"auth":{"consumers":[{"name":"a","api_keys":[{"id":"k","sha256":"abc"}]}]}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("auth.consumers[0].api_keys[0].sha256: "), "{err}");
}

#[test]
fn a_model_scoped_key_is_judged_on_the_model_its_body_names() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let request = head("/v1/chat/completions", &[("authorization", &format!("Bearer {BOB_KEY}"))]);

    let mut stream = pipeline.stream();
    assert_eq!(pipeline.on_request_headers(&mut stream, &request, host.ports()), Verdict::AwaitBody);
    assert!(pipeline.reads_request_body(&stream));
    assert_eq!(
        pipeline.on_request_body(&mut stream, br#"{"model":"#, false, host.ports()),
        BodyVerdict::Buffer
    );
    let body = br#"{"model":"gpt-4o-mini","messages":[]}"#;
    let BodyVerdict::Continue { head: edits, body: None } =
        pipeline.on_request_body(&mut stream, body, true, host.ports())
    else {
        panic!("expected the request to go upstream");
    };
    let mut headers = request.headers.clone();
    edits.apply_to(&mut headers);
    assert_eq!(headers.get("x-tollgate-consumer"), Some("bob"));
    assert_eq!(headers.get("authorization"), None);

    let mut stream = pipeline.stream();
    assert_eq!(pipeline.on_request_headers(&mut stream, &request, host.ports()), Verdict::AwaitBody);
    let BodyVerdict::Respond(reply) =
        pipeline.on_request_body(&mut stream, br#"{"model":"claude-3-opus"}"#, true, host.ports())
    else {
        panic!("expected a 403");
    };
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!((reply.status, body["error"]["code"].as_str()), (403, Some("key_scope_model")));
    assert_eq!(host.metric("tollgate_auth_forbidden_total"), 1);

    // No model named (or not JSON): nothing to refuse.
    let mut stream = pipeline.stream();
    pipeline.on_request_headers(&mut stream, &request, host.ports());
    assert!(matches!(
        pipeline.on_request_body(&mut stream, b"not json", true, host.ports()),
        BodyVerdict::Continue { .. }
    ));
}

#[test]
fn keys_without_a_model_scope_do_not_wait_for_the_body() {
    let (pipeline, host) = (pipeline(), MemoryHost::default());
    let request = head("/v1/chat/completions", &[("x-api-key", ALICE_KEY)]);
    let mut stream = pipeline.stream();
    assert!(matches!(pipeline.on_request_headers(&mut stream, &request, host.ports()), Verdict::Continue(_)));
    assert!(!pipeline.reads_request_body(&stream), "the filter need not copy the body out");
    assert!(!pipeline.reads_response_body(&stream));
    assert_eq!(pipeline.on_request_body(&mut stream, b"{}", true, host.ports()), BodyVerdict::pass());
}

fn ip_pipeline(client_address: serde_json::Value) -> Pipeline {
    let mut auth = serde_json::json!({
        "consumers": [{"name": "alice", "group": "readers", "api_keys": [{"id": "k1", "sha256": alice_hash()}]}],
        "routes": [{
            "path_prefix": "/internal/", "ip": {"allow": ["10.0.0.0/8"], "deny": ["10.6.0.0/16"]},
            "consumer_methods": [{"groups": ["readers"], "methods": ["GET"]}]
        }]
    });
    if !client_address.is_null() {
        auth["client_address"] = client_address;
    }
    let config = serde_json::json!({ "auth": auth });
    Pipeline::from_json(config.to_string().as_bytes()).unwrap()
}

#[test]
fn ip_rules_on_the_source_address_make_the_filter_hand_it_over() {
    assert!(ip_pipeline(serde_json::Value::Null).wants_source_address());
    let xff = ip_pipeline(serde_json::json!({"from": "x_forwarded_for", "trusted_hops": 1}));
    assert!(!xff.wants_source_address());
    assert!(!pipeline().wants_source_address());
}

#[test]
fn the_source_address_reaches_auth_and_an_outside_one_gets_403_ip_denied() {
    let (pipeline, host) = (ip_pipeline(serde_json::Value::Null), MemoryHost::default());
    let key = format!("Bearer {ALICE_KEY}");
    let request = head("/internal/stats", &[("authorization", &key)]);

    let mut inside = pipeline.stream();
    pipeline.set_source_address(&mut inside, "10.1.2.3:40000");
    let headers =
        upstream_headers(pipeline.on_request_headers(&mut inside, &request, host.ports()), &request);
    assert_eq!(headers.get("x-tollgate-consumer"), Some("alice"));

    let mut outside = pipeline.stream();
    pipeline.set_source_address(&mut outside, "[2001:db8::1]:443");
    let (status, body) = reply_status(&pipeline.on_request_headers(&mut outside, &request, host.ports()));
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "ip_denied");
    assert_eq!(body["error"]["type"], "permission_error");
    assert!(!body["error"]["message"].as_str().unwrap_or_default().contains("10.0.0.0"));

    // No address handed over at all: refused, not let through.
    let mut unknown = pipeline.stream();
    let no_key = head("/internal/stats", &[]);
    let (status, body) = reply_status(&pipeline.on_request_headers(&mut unknown, &no_key, host.ports()));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("ip_denied")));
    assert_eq!(host.metric("tollgate_auth_ip_denied_total"), 2);
}

#[test]
fn forwarded_for_addresses_are_judged_without_the_source() {
    let pipeline = ip_pipeline(serde_json::json!({"from": "x_forwarded_for", "trusted_hops": 2}));
    let host = MemoryHost::default();
    let key = format!("Bearer {ALICE_KEY}");
    let spoofed =
        head("/internal/", &[("authorization", &key), ("x-forwarded-for", "10.1.1.1, 192.0.2.4, 10.0.0.9")]);
    let (status, body) =
        reply_status(&pipeline.on_request_headers(&mut pipeline.stream(), &spoofed, host.ports()));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("ip_denied")));
    let ok =
        head("/internal/", &[("authorization", &key), ("x-forwarded-for", "192.0.2.4, 10.1.1.1, 10.0.0.9")]);
    assert!(matches!(
        pipeline.on_request_headers(&mut pipeline.stream(), &ok, host.ports()),
        Verdict::Continue(_)
    ));
}

#[test]
fn a_consumer_limited_to_other_methods_gets_403() {
    let (pipeline, host) = (ip_pipeline(serde_json::Value::Null), MemoryHost::default());
    let mut stream = pipeline.stream();
    pipeline.set_source_address(&mut stream, "10.1.2.3:40000");
    let key = format!("Bearer {ALICE_KEY}");
    let request =
        RequestHead::from_pairs([(":method", "POST"), (":path", "/internal/x"), ("authorization", &key)]);
    let (status, body) = reply_status(&pipeline.on_request_headers(&mut stream, &request, host.ports()));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("method_not_allowed_for_consumer")));
    assert_eq!(host.metric("tollgate_auth_method_denied_total"), 1);
}

#[test]
fn ip_rule_errors_name_their_path() {
    let config =
        serde_json::json!({"auth": {"routes": [{"path_prefix": "/", "ip": {"deny": ["10.0.0.0/33"]}}]}});
    let err = Pipeline::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
    assert_eq!(err, r#"auth.routes[0].ip.deny[0]: "10.0.0.0/33" is not an IP address or CIDR"#);
}

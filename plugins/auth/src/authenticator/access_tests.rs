//! IP rules and per-consumer method rules as `Auth::authenticate_from` applies them.

use tollgate_core::testing::MemoryHost;
use tollgate_core::ConfigPath;

use super::*;
use crate::client_ip::IpDenial;
use crate::config::RawAuthConfig;
use crate::metrics::{FORBIDDEN, IP_DENIED, METHOD_DENIED, MISSING};

const ALICE: &str = "tg_alice_secret";
const BOB: &str = "tg_bob_secret";

fn sha(key: &str) -> String {
    hex::encode(crate::api_keys::digest(key))
}

fn auth_with(extra: serde_json::Value) -> Auth {
    let mut config = serde_json::json!({
        "consumers": [
            {"name": "alice", "group": "readers", "api_keys": [{"id": "k-alice", "sha256": sha(ALICE)}]},
            {"name": "bob", "group": "writers", "api_keys": [{"id": "k-bob", "sha256": sha(BOB)}]}
        ],
        "routes": [
            {"path_prefix": "/open/", "require": "none", "ip": {"allow": ["10.0.0.0/8"]}},
            {"path_prefix": "/internal/", "ip": {"allow": ["10.0.0.0/8", "2001:db8::/32"], "deny": ["10.6.0.0/16"]}},
            {"path_prefix": "/docs/", "consumer_methods": [
                {"groups": ["readers"], "methods": ["GET", "HEAD"]},
                {"consumers": ["bob"], "methods": ["PUT"]}
            ]}
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

fn key(secret: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {secret}"))
}

fn decide(
    auth: &Auth,
    head: &RequestHead,
    source: Option<&str>,
    host: &MemoryHost,
) -> Result<Authorized, AuthError> {
    match auth.authenticate_from(head, source, host.ports()) {
        AuthDecision::Allow(authorized) => Ok(authorized),
        AuthDecision::Deny(error) => Err(error),
        AuthDecision::NeedsKeys(_) => panic!("no JWT providers here"),
    }
}

#[test]
fn ip_rules_come_before_credentials() {
    let (auth, host) = (auth(), MemoryHost::default());
    let (n, v) = key(ALICE);
    let with_key = request("GET", "/internal/x", &[(n, &v)]);
    assert!(decide(&auth, &with_key, Some("10.1.2.3:4000"), &host).is_ok());
    assert!(decide(&auth, &with_key, Some("[2001:db8::9]:443"), &host).is_ok());
    let denied = decide(&auth, &with_key, Some("10.6.0.1:4000"), &host).unwrap_err();
    assert!(matches!(denied, AuthError::IpDenied(IpDenial::NotAllowed)));
    // Without a key, an outside address still gets 403, not 401.
    let no_key = request("GET", "/internal/x", &[]);
    let denied = decide(&auth, &no_key, Some("192.0.2.1:1"), &host).unwrap_err();
    assert_eq!((denied.status(), denied.code()), (403, "ip_denied"));
    // An inside address without a key is asked for credentials as usual.
    assert!(matches!(
        decide(&auth, &no_key, Some("10.1.1.1:1"), &host),
        Err(AuthError::MissingCredentials(_))
    ));
    assert_eq!(host.metric(IP_DENIED), 2);
    assert_eq!(host.metric(MISSING), 1);
    assert_eq!(host.metric(FORBIDDEN), 0);
}

#[test]
fn ip_rules_apply_to_open_routes_and_unknown_addresses_fail_closed() {
    let (auth, host) = (auth(), MemoryHost::default());
    let head = request("GET", "/open/status", &[]);
    assert!(decide(&auth, &head, Some("10.0.0.1:9"), &host).unwrap().consumer.is_none());
    assert!(matches!(decide(&auth, &head, None, &host), Err(AuthError::IpDenied(IpDenial::UnknownAddress))));
    assert!(matches!(decide(&auth, &head, Some("not-an-address"), &host), Err(AuthError::IpDenied(_))));
    // `authenticate` has no peer address: routes with IP rules refuse, others are unaffected.
    assert!(matches!(auth.authenticate(&head, host.ports()), AuthDecision::Deny(AuthError::IpDenied(_))));
    let (n, v) = key(ALICE);
    assert!(matches!(
        auth.authenticate(&request("GET", "/v1/models", &[(n, &v)]), host.ports()),
        AuthDecision::Allow(_)
    ));
    assert_eq!(host.metric(IP_DENIED), 3);
}

#[test]
fn forwarded_for_is_read_when_configured() {
    let auth =
        auth_with(serde_json::json!({"client_address": {"from": "x_forwarded_for", "trusted_hops": 1}}));
    let host = MemoryHost::default();
    assert!(!auth.wants_source_address());
    let inside = request("GET", "/open/", &[("x-forwarded-for", "192.0.2.1, 10.2.3.4")]);
    assert!(decide(&auth, &inside, Some("192.0.2.99:1"), &host).is_ok());
    let outside = request("GET", "/open/", &[("x-forwarded-for", "10.2.3.4, 192.0.2.1")]);
    assert!(decide(&auth, &outside, Some("10.0.0.1:1"), &host).is_err());
    assert!(decide(&auth, &request("GET", "/open/", &[]), Some("10.0.0.1:1"), &host).is_err());
}

#[test]
fn only_source_ip_rules_want_the_source_address() {
    assert!(auth().wants_source_address());
    let plain = auth_with(serde_json::json!({"routes": []}));
    assert!(!plain.wants_source_address());
}

#[test]
fn consumer_methods_limit_groups_and_named_consumers() {
    let (auth, host) = (auth(), MemoryHost::default());
    let (a, alice) = key(ALICE);
    let (b, bob) = key(BOB);
    assert!(decide(&auth, &request("GET", "/docs/1", &[(a, &alice)]), None, &host).is_ok());
    assert!(decide(&auth, &request("HEAD", "/docs/1", &[(a, &alice)]), None, &host).is_ok());
    let denied = decide(&auth, &request("POST", "/docs/1", &[(a, &alice)]), None, &host).unwrap_err();
    assert_eq!(
        (denied.status(), denied.code(), denied.kind()),
        (403, "method_not_allowed_for_consumer", "permission_error")
    );
    assert_eq!(denied.to_string(), "consumer alice may not use method POST on this route");
    assert!(decide(&auth, &request("PUT", "/docs/1", &[(b, &bob)]), None, &host).is_ok());
    assert!(decide(&auth, &request("GET", "/docs/1", &[(b, &bob)]), None, &host).is_err());
    // Other routes are not limited.
    assert!(decide(&auth, &request("POST", "/v1/chat", &[(a, &alice)]), None, &host).is_ok());
    assert_eq!(host.metric(METHOD_DENIED), 2);
    assert_eq!(host.metric("tollgate_auth.consumer.alice.forbidden"), 1);
    assert_eq!(host.metric("tollgate_auth.consumer.bob.forbidden"), 1);
}

#[test]
fn route_errors_name_their_json_path() {
    let err = |routes: serde_json::Value| {
        let config = serde_json::json!({
            "consumers": [{"name": "alice", "group": "readers", "api_keys": [{"id": "k", "sha256": sha(ALICE)}]}],
            "routes": routes
        });
        let raw: RawAuthConfig = serde_json::from_value(config).unwrap();
        Auth::compile(raw, &ConfigPath::root().field("auth")).unwrap_err().to_string()
    };
    assert_eq!(
        err(serde_json::json!([{"path_prefix": "/a"}, {"path_prefix": "/b"},
            {"path_prefix": "/c", "ip": {"allow": ["10.0.0.0/8", "10.0.0.0/33"]}}])),
        r#"auth.routes[2].ip.allow[1]: "10.0.0.0/33" is not an IP address or CIDR"#
    );
    assert_eq!(
        err(
            serde_json::json!([{"path_prefix": "/", "consumer_methods": [{"groups": ["writers"], "methods": ["GET"]}]}])
        ),
        r#"auth.routes[0].consumer_methods[0].groups[0]: unknown group "writers""#
    );
    assert_eq!(
        err(serde_json::json!([{"path_prefix": "/", "require": "none",
            "consumer_methods": [{"consumers": ["alice"], "methods": ["GET"]}]}])),
        r#"auth.routes[0].consumer_methods: a route that requires "none" has no consumer to limit"#
    );
}

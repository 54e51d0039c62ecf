use serde_json::json;

use super::*;

fn sha(key: &str) -> String {
    hex::encode(crate::api_keys::digest(key))
}

fn compile(config: serde_json::Value) -> Result<Auth, ConfigError> {
    let raw: RawAuthConfig =
        serde_json::from_value(config).map_err(|e| ConfigPath::root().error(e.to_string()))?;
    Auth::compile(raw, &ConfigPath::root().field("auth"))
}

fn err(config: serde_json::Value) -> String {
    match compile(config) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e.to_string(),
    }
}

fn alice(keys: serde_json::Value) -> serde_json::Value {
    json!([{"name": "alice", "group": "gold", "api_keys": keys}])
}

#[test]
fn the_documented_example_compiles() {
    let auth = compile(json!({
        "consumers": [{"name": "alice", "group": "gold", "api_keys": [
            {"id": "k-2f1c", "sha256": sha("tg_x"), "expires_at": "2027-01-01T00:00:00Z", "routes": ["/v1/chat/"], "models": ["gpt-4o"]}
        ]}],
        "api_key_sources": [{"header": "authorization", "scheme": "Bearer"}, {"header": "x-api-key"}, {"header": "api-key"},
                            {"query": "api_key"}, {"cookie": "tollgate_key"}],
        "routes": [{"path_prefix": "/v1/", "methods": ["POST"], "require": "api_key", "consumers": ["alice"], "groups": ["gold"]}],
        "consumer_header": "x-tollgate-consumer",
        "default": "none"
    }))
    .unwrap();
    assert_eq!(auth.consumer_header, "x-tollgate-consumer");
    assert_eq!(auth.identity_headers, ["x-tollgate-consumer"]);
}

#[test]
fn defaults_follow_what_is_configured() {
    let off = compile(json!({})).unwrap();
    assert_eq!(off.routes.find("GET", "/x").require, Require::None);
    let on = compile(json!({"consumers": alice(json!([{"id": "k-1", "sha256": sha("tg_x")}]))})).unwrap();
    assert_eq!(on.routes.find("GET", "/x").require, Require::Any);
    assert_eq!(
        on.api_key_sources,
        Sources::compile(
            None,
            vec![Source::bearer(), Source::header("x-api-key"), Source::header("api-key")],
            &ConfigPath::root()
        )
        .unwrap()
    );
    assert_eq!(on.jwt_sources, Sources::compile(None, vec![Source::bearer()], &ConfigPath::root()).unwrap());
    // Consumers without keys (e.g. JWT subjects given a group) do not turn authentication on.
    let groups_only = compile(json!({"consumers": [{"name": "carol", "group": "silver"}]})).unwrap();
    assert_eq!(groups_only.routes.find("GET", "/x").require, Require::None);
}

#[test]
fn routes_inherit_the_default() {
    let auth = compile(json!({
        "consumers": alice(json!([{"id": "k-1", "sha256": sha("tg_x")}])),
        "default": "none",
        "routes": [{"path_prefix": "/v1/"}]
    }))
    .unwrap();
    assert_eq!(auth.routes.find("GET", "/v1/x").require, Require::None);
}

#[test]
fn key_errors_name_their_path() {
    let two = |second: serde_json::Value| alice(json!([{"id": "k-1", "sha256": sha("tg_x")}, second]));
    assert_eq!(
        err(json!({"consumers": two(json!({"id": "k-2", "sha256": "abc"}))})),
        "auth.consumers[0].api_keys[1].sha256: must be 64 hex characters"
    );
    assert_eq!(
        err(json!({"consumers": [
            {"name": "alice", "api_keys": [{"id": "k-1", "sha256": sha("tg_x")}]},
            {"name": "bob", "api_keys": [{"id": "k-1", "sha256": sha("tg_y")}]}
        ]})),
        r#"auth.consumers[1].api_keys[0].id: key id "k-1" is already used at auth.consumers[0].api_keys[0].id"#
    );
    assert!(err(
        json!({"consumers": two(json!({"id": "k-2", "sha256": sha("tg_y"), "expires_at": "tomorrow"}))})
    )
    .starts_with("auth.consumers[0].api_keys[1].expires_at: must be an RFC 3339 timestamp"));
}

#[test]
fn consumer_errors_name_their_path() {
    assert_eq!(
        err(json!({"consumers": [{"name": "alice"}, {"name": "alice"}]})),
        r#"auth.consumers[1].name: consumer "alice" is declared twice"#
    );
    assert_eq!(
        err(json!({"consumers": [{"name": ""}]})),
        "auth.consumers[0].name: must be 1 to 128 visible ASCII characters"
    );
    assert_eq!(
        err(json!({"consumers": [{"name": "a", "group": "g\n"}]})),
        "auth.consumers[0].group: must be 1 to 128 visible ASCII characters"
    );
}

#[test]
fn section_errors_name_their_path() {
    let keys = alice(json!([{"id": "k-1", "sha256": sha("tg_x")}]));
    assert_eq!(
        err(
            json!({"consumers": keys, "routes": [{"path_prefix": "/"}, {"path_prefix": "/a", "consumers": ["bob"]}]})
        ),
        r#"auth.routes[1].consumers[0]: unknown consumer "bob""#
    );
    assert_eq!(
        err(json!({"consumers": keys, "routes": [{"path_prefix": "/", "require": "jwt"}]})),
        "auth.routes[0].require: requires a JWT, but no jwt_providers are configured"
    );
    assert_eq!(
        err(json!({"default": "api_key"})),
        "auth.default: requires API keys, but no consumer has one"
    );
    assert_eq!(
        err(
            json!({"consumers": keys, "api_key_sources": [{"header": "x-key"}, {"cookie": "a", "query": "b"}]})
        ),
        "auth.api_key_sources[1]: must have exactly one of `header`, `query` or `cookie`"
    );
    assert_eq!(
        err(json!({"consumers": keys, "jwt_sources": []})),
        "auth.jwt_sources: must list at least one source (omit it for the defaults)"
    );
    assert_eq!(
        err(json!({"consumer_header": "Authorization"})),
        r#"auth.consumer_header: "authorization" cannot carry the consumer name"#
    );
    assert_eq!(
        err(json!({"consumer_header": "x consumer"})),
        r#"auth.consumer_header: "x consumer" cannot carry the consumer name"#
    );
    assert!(err(json!({"jwt_providers": [{"name": "corp"}]})).contains("missing field"));
}

#[test]
fn unknown_fields_are_refused() {
    assert!(err(json!({"consumer": []})).contains("unknown field `consumer`"));
    assert!(err(json!({"consumers": [{"name": "a", "keys": []}]})).contains("unknown field `keys`"));
    assert!(err(json!({"routes": [{"path": "/"}]})).contains("unknown field `path`"));
}

#[test]
fn jwt_provider_errors_keep_their_path() {
    let e = err(json!({"jwt_providers": [{"name": "corp", "algorithms": ["HS256"], "keys": {}}]}));
    assert!(e.starts_with("auth.jwt_providers[0]"), "{e}");
}

use serde_json::{json, Value};

use super::*;

fn compile(config: Value) -> Result<AiConfig, String> {
    let text = config.to_string();
    let raw: RawAiConfig = serde_json::from_str(&text)
        .map_err(|e| format!("ai.{}: {e}", tollgate_core::json_error_path(text.as_bytes(), &e)))?;
    AiConfig::compile(raw, &ConfigPath::root().field("ai")).map_err(|e| e.to_string())
}

fn with_provider(provider: Value) -> Value {
    json!({"providers": [provider], "models": [{"name": "*", "provider": "p"}]})
}

#[test]
fn the_documented_example_compiles_with_defaults() {
    let config = compile(json!({
        "providers": [
            {"name": "claude", "kind": "anthropic", "cluster": "anthropic", "api_key": "sk-ant",
             "api_version": "2023-06-01", "default_max_tokens": 1024},
            {"name": "azure", "kind": "azure", "cluster": "azure", "base_url": "https://r.openai.azure.com/openai/",
             "deployments": {"gpt-4o": "prod-gpt4o"}}
        ],
        "models": [{"name": "claude-*", "provider": "claude"}, {"name": "gpt-4o", "provider": "azure"}]
    }))
    .unwrap();
    let claude = &config.providers[0];
    assert_eq!((claude.authority.as_str(), claude.settings.base_path.as_str()), ("api.anthropic.com", ""));
    assert_eq!(claude.settings.default_max_tokens, 1024);
    assert_eq!(config.providers[1].settings.base_path, "/openai");
    assert_eq!(config.providers[1].settings.default_max_tokens, 4096);
    assert_eq!(config.cluster_header, DEFAULT_CLUSTER_HEADER);
    assert_eq!(config.unsupported_fields, UnsupportedFields::Drop);
    assert_eq!(config.limits.max_request_bytes, 4 << 20);
    assert_eq!(config.limits.max_response_bytes, 8 << 20);
    assert_eq!(config.limits.max_event_bytes, 1 << 20);
    assert_eq!(config.router.route("claude-x").map(|m| m.route.provider), Some(0));
}

#[test]
fn mistakes_name_their_path() {
    let p = |extra: Value| {
        let mut provider = json!({"name": "p", "kind": "openai", "cluster": "c"});
        provider.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        compile(with_provider(provider)).unwrap_err()
    };
    assert!(p(json!({"kind": "cohere"})).starts_with("ai.providers[0].kind: unknown variant `cohere`"));
    assert!(p(json!({"base_url": "ftp://x"})).starts_with("ai.providers[0].base_url: "));
    assert!(p(json!({"kind": "azure"})).starts_with("ai.providers[0].base_url: is required"));
    assert!(p(json!({"kind": "openai_compatible"})).starts_with("ai.providers[0].base_url: is required"));
    assert!(p(json!({"cluster": "a\nb"})).starts_with("ai.providers[0].cluster: "));
    assert!(p(json!({"name": ""})).starts_with("ai.providers[0].name: must not be empty"));
    assert!(
        p(json!({"default_max_tokens": 0})).starts_with("ai.providers[0].default_max_tokens: must be > 0")
    );
    assert!(p(json!({"api_keys": "x"})).starts_with("ai.providers[0].api_keys: unknown field"));
    assert!(p(json!({"deployments": {"gpt-4o": "a/b"}})).starts_with("ai.providers[0].deployments.gpt-4o: "));

    let two = json!({"providers": [{"name": "p", "kind": "openai", "cluster": "c"},
                                   {"name": "p", "kind": "mistral", "cluster": "c"}], "models": []});
    assert_eq!(compile(two).unwrap_err(), r#"ai.providers[1].name: provider "p" is declared twice"#);
    let orphan = json!({"providers": [], "models": [{"name": "m", "provider": "ghost"}]});
    assert_eq!(compile(orphan).unwrap_err(), r#"ai.models[0].provider: no provider is named "ghost""#);

    let mut limits = with_provider(json!({"name": "p", "kind": "openai", "cluster": "c"}));
    limits["limits"] = json!({"max_event_bytes": 0});
    assert_eq!(compile(limits.clone()).unwrap_err(), "ai.limits.max_event_bytes: must be > 0");
    limits["limits"] = json!({"max_events": 1});
    assert!(compile(limits.clone()).unwrap_err().starts_with("ai.limits.max_events: unknown field"));
    limits.as_object_mut().unwrap().remove("limits");
    limits["cluster_header"] = json!("bad header");
    assert!(compile(limits.clone()).unwrap_err().starts_with("ai.cluster_header: "));
    limits["cluster_header"] = json!("X-Route-To");
    assert_eq!(compile(limits.clone()).unwrap().cluster_header, "x-route-to");
    limits["unsupported_fields"] = json!("ignore");
    assert!(compile(limits).unwrap_err().starts_with("ai.unsupported_fields: unknown variant"));
}

#[test]
fn the_api_key_is_never_shown() {
    let secret = "sk-very-secret\u{7}";
    let err =
        compile(with_provider(json!({"name": "p", "kind": "openai", "cluster": "c", "api_key": secret})))
            .unwrap_err();
    assert!(err.starts_with("ai.providers[0].api_key: "), "{err}");
    assert!(!err.contains("sk-very-secret"), "{err}");

    let config =
        with_provider(json!({"name": "p", "kind": "openai", "cluster": "c", "api_key": "sk-good-secret"}));
    let raw: RawAiConfig = serde_json::from_value(config.clone()).unwrap();
    assert!(!format!("{raw:?}").contains("sk-good-secret"));
    let compiled = compile(config).unwrap();
    assert_eq!(compiled.providers[0].settings.api_key.as_deref(), Some("sk-good-secret"));
    assert!(!format!("{compiled:?}").contains("sk-good-secret"));
}

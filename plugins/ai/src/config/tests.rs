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
    assert!(p(json!({"api_token": "x"})).starts_with("ai.providers[0].api_token: unknown field"));
    assert!(p(json!({"api_keys": "x"})).starts_with("ai.providers[0].api_keys: invalid type"));
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

fn bedrock(extra: Value) -> Value {
    let mut provider = json!({"name": "p", "kind": "bedrock", "cluster": "bedrock", "region": "eu-west-3",
                              "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalr-secret-key"});
    let object = provider.as_object_mut().unwrap();
    for (name, value) in extra.as_object().unwrap() {
        if value.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), value.clone());
        }
    }
    with_provider(provider)
}

#[test]
fn a_bedrock_provider_signs_for_its_region() {
    let config = compile(bedrock(json!({"aws_session_token": "tok"}))).unwrap();
    let provider = &config.providers[0];
    assert_eq!(provider.authority, "bedrock-runtime.eu-west-3.amazonaws.com");
    assert_eq!(provider.settings.authority, provider.authority);
    assert_eq!(provider.settings.base_path, "");
    let aws = provider.settings.aws.as_ref().unwrap();
    assert_eq!(
        (aws.region.as_str(), aws.access_key_id.as_str(), aws.secret_access_key.as_str()),
        ("eu-west-3", "AKIDEXAMPLE", "wJalr-secret-key")
    );
    assert_eq!(aws.session_token.as_deref(), Some("tok"));

    // A base_url (a VPC endpoint, a proxy) replaces the regional endpoint; the region still signs.
    let config = compile(bedrock(
        json!({"base_url": "https://vpce-1.bedrock-runtime.eu-west-3.vpce.amazonaws.com/x/"}),
    ))
    .unwrap();
    let provider = &config.providers[0];
    assert_eq!(provider.authority, "vpce-1.bedrock-runtime.eu-west-3.vpce.amazonaws.com");
    assert_eq!(provider.settings.base_path, "/x");
    assert_eq!(provider.settings.aws.as_ref().unwrap().session_token, None);
}

#[test]
fn bedrock_mistakes_name_their_path() {
    let err = |extra: Value| compile(bedrock(extra)).unwrap_err();
    assert_eq!(err(json!({"region": null})), "ai.providers[0].region: is required for a bedrock provider");
    assert_eq!(
        err(json!({"aws_access_key_id": null})),
        "ai.providers[0].aws_access_key_id: is required for a bedrock provider"
    );
    assert_eq!(
        err(json!({"aws_secret_access_key": null})),
        "ai.providers[0].aws_secret_access_key: is required for a bedrock provider"
    );
    assert!(err(json!({"region": "US East"}))
        .starts_with("ai.providers[0].region: \"US East\" is not an AWS region"));
    assert!(err(json!({"region": ""})).starts_with("ai.providers[0].region: "));
    for unused in [json!({"api_key": "k"}), json!({"api_version": "v"}), json!({"deployments": {"a": "b"}})] {
        let name = unused.as_object().unwrap().keys().next().unwrap().clone();
        assert!(
            err(unused).starts_with(&format!("ai.providers[0].{name}: is not used by a bedrock provider")),
            "{name}"
        );
    }
    for field in ["region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"] {
        let mut provider = json!({"name": "p", "kind": "anthropic", "cluster": "c"});
        provider[field] = json!("x");
        assert_eq!(
            compile(with_provider(provider)).unwrap_err(),
            format!("ai.providers[0].{field}: is only used by providers of kind bedrock")
        );
    }
    assert!(err(json!({"aws_region": "x"})).starts_with("ai.providers[0].aws_region: unknown field"));
}

#[test]
fn aws_credentials_are_never_shown() {
    for (field, secret) in [
        ("aws_access_key_id", "AKIA/SEKRIT,ID"),
        ("aws_access_key_id", "AKIA SEKRIT"),
        ("aws_secret_access_key", "very-sekrit\u{7}"),
        ("aws_secret_access_key", " very-sekrit"),
        ("aws_session_token", "very-sekrit\n"),
    ] {
        let err = compile(bedrock(json!({ field: secret }))).unwrap_err();
        assert!(err.starts_with(&format!("ai.providers[0].{field}: ")), "{err}");
        assert!(!err.to_lowercase().contains("sekrit"), "{err}");
    }
    let config = bedrock(json!({"aws_session_token": "tok-sekrit"}));
    let raw: RawAiConfig = serde_json::from_value(config.clone()).unwrap();
    let printed = format!("{raw:?}");
    assert!(
        !printed.contains("AKIDEXAMPLE") && !printed.contains("sekrit") && !printed.contains("wJalr"),
        "{printed}"
    );
    let compiled = compile(config).unwrap();
    let printed = format!("{compiled:?}");
    assert!(
        !printed.contains("AKIDEXAMPLE") && !printed.contains("sekrit") && !printed.contains("wJalr"),
        "{printed}"
    );
    assert!(printed.contains("eu-west-3"), "{printed}");
}

use serde_json::json;
use tollgate_core::SharedStore;

use super::*;

fn compile(section: serde_json::Value) -> Result<RateLimits, ConfigError> {
    let raw: RawRateLimitConfig =
        serde_json::from_value(section).map_err(|e| ConfigError::at("", e.to_string()))?;
    RateLimits::compile(raw, &ConfigPath::root().field("ratelimit"))
}

fn error(section: serde_json::Value) -> String {
    compile(section).unwrap_err().to_string()
}

fn rules(rules: serde_json::Value) -> serde_json::Value {
    json!({ "rules": rules })
}

#[test]
fn a_full_section_compiles() {
    let limits = compile(json!({
        "headers": true,
        "currency": "USD",
        "default_max_tokens": 512,
        "rules": [
            {"name": "per-user", "key": ["consumer", {"header": "X-Team"}], "requests": 100, "per": "minute", "burst": 10},
            {"name": "chat", "key": ["route", "model"], "routes": ["/v1/chat"], "tokens": 100000, "per": "hour", "shadow": true},
            {"name": "spend", "key": ["group"], "budget": 50.0, "per": "month", "mode": "local", "max_keys": 16}
        ],
        "prices": {"models": {"gpt-4o": {"input": 2.5, "output": 10}}}
    }))
    .unwrap();
    assert!(!limits.is_empty());
    assert_eq!(limits.rules[0].key, [KeyPart::Consumer, KeyPart::Header("x-team".into())]);
    assert!(matches!(limits.rules[2].limit, Limit::Budget { limit: 50_000_000, period: Period::Month }));
}

#[test]
fn an_empty_section_limits_nothing() {
    assert!(compile(json!({})).unwrap().is_empty());
}

#[test]
fn unknown_units_name_the_rule() {
    let e = error(rules(json!([
        {"name": "a", "requests": 1, "per": "second"},
        {"name": "b", "requests": 1, "per": "minute"},
        {"name": "c", "requests": 1, "per": "fortnight"}
    ])));
    assert_eq!(e, "ratelimit.rules[2].per: unknown unit");
}

#[test]
fn units_must_suit_the_kind_of_limit() {
    assert_eq!(
        error(rules(json!([{"name": "a", "budget": 1.0, "per": "minute"}]))),
        "ratelimit.rules[0].per: minute is not a unit for budget limits (day, month)"
    );
    assert!(error(rules(json!([{"name": "a", "tokens": 1, "per": "second"}]))).contains("tokens limits"));
    assert!(error(rules(json!([{"name": "a", "requests": 1, "per": "month"}]))).contains("requests limits"));
}

#[test]
fn modes_are_local_or_global() {
    assert_eq!(
        error(rules(json!([{"name": "a", "mode": "global"}]))),
        "ratelimit.rules[0].mode: a global rule needs ratelimit.service (the rate limit service)"
    );
    assert!(error(rules(json!([{"name": "a", "requests": 1, "per": "second", "mode": "remote"}])))
        .contains("unknown mode"));
}

#[test]
fn each_rule_limits_exactly_one_thing() {
    let e = error(rules(json!([{"name": "a", "requests": 1, "tokens": 5, "per": "day"}])));
    assert_eq!(e, "ratelimit.rules[0]: needs exactly one of requests, tokens or budget");
    assert!(error(rules(json!([{"name": "a", "per": "day"}]))).contains("exactly one"));
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        (json!({"name": "a", "requests": 0, "per": "day"}), "ratelimit.rules[0].requests: must be > 0"),
        (
            json!({"name": "a", "requests": 5, "burst": 0, "per": "day"}),
            "ratelimit.rules[0].burst: must be > 0",
        ),
        (
            json!({"name": "a", "tokens": 5, "burst": 2, "per": "day"}),
            "ratelimit.rules[0].burst: applies to request limits only",
        ),
        (
            json!({"name": "a", "budget": -1.0, "per": "day"}),
            "ratelimit.rules[0].budget: must be an amount > 0",
        ),
        (json!({"name": "a b", "requests": 1, "per": "day"}), "ratelimit.rules[0].name: must be 1 to 64"),
        (
            json!({"name": "a", "requests": 1, "per": "day", "key": ["who"]}),
            "ratelimit.rules[0].key[0]: unknown key part",
        ),
        (
            json!({"name": "a", "requests": 1, "per": "day", "key": ["route"]}),
            "ratelimit.rules[0].key[0]: keys by route but the rule lists no routes",
        ),
        (
            json!({"name": "a", "requests": 1, "per": "day", "key": [{"header": "bad header"}]}),
            "ratelimit.rules[0].key[0].header:",
        ),
        (
            json!({"name": "a", "requests": 1, "per": "day", "routes": ["v1"]}),
            "ratelimit.rules[0].routes[0]: must be a path prefix",
        ),
        (
            json!({"name": "a", "requests": 1, "per": "day", "max_keys": 0}),
            "ratelimit.rules[0].max_keys: must be 1 to 65536",
        ),
    ];
    for (rule, expected) in cases {
        let e = error(rules(json!([rule])));
        assert!(e.starts_with(expected), "{e:?} should start with {expected:?}");
    }
}

#[test]
fn duplicate_rules_and_section_fields_are_refused() {
    let twice = rules(
        json!([{"name": "a", "requests": 1, "per": "day"}, {"name": "a", "requests": 2, "per": "day"}]),
    );
    assert_eq!(error(twice), "ratelimit.rules[1].name: rule \"a\" is declared twice");
    assert_eq!(error(json!({"default_max_tokens": 0})), "ratelimit.default_max_tokens: must be > 0");
    assert!(error(json!({"currency": "US$"})).starts_with("ratelimit.currency:"));
    assert!(serde_json::from_value::<RawRateLimitConfig>(json!({"rulez": []})).is_err());
    assert!(serde_json::from_value::<RawRule>(json!({"name": "a", "per": "day", "limit": 3})).is_err());
}

#[test]
fn unkeyed_rules_need_one_slot_per_route() {
    let limits = compile(rules(json!([
        {"name": "a", "requests": 1, "per": "day"},
        {"name": "b", "requests": 1, "per": "day", "key": ["route"], "routes": ["/x", "/y"]},
        {"name": "c", "requests": 1, "per": "day", "key": ["consumer"]}
    ])))
    .unwrap();
    let host = tollgate_core::testing::MemoryHost::default();
    limits.prepare(host.ports()).unwrap();
    let slots = |rule: &str, n: u32| host.get(&format!("tollgate/v1/rl/{rule}/{n}")).unwrap().is_some();
    assert!(slots("a", 0) && !slots("a", 1));
    assert!(slots("b", 1) && !slots("b", 2));
    assert!(slots("c", DEFAULT_MAX_KEYS - 1) && !slots("c", DEFAULT_MAX_KEYS));
}

use prost::Message as _;
use serde_json::json;
use tollgate_core::testing::MemoryHost;
use tollgate_core::{CallOutcome, Headers};

use super::proto::{DescriptorStatus, RateLimit, RateLimitRequest, RateLimitResponse, CODE_OK};
use super::*;
use crate::RawRateLimitConfig;

fn limits(section: serde_json::Value) -> RateLimits {
    let raw: RawRateLimitConfig = serde_json::from_value(section).unwrap();
    RateLimits::compile(raw, &ConfigPath::root().field("ratelimit")).unwrap()
}

fn fleet(extra: serde_json::Value) -> RateLimits {
    let mut rule = json!({"name": "fleet", "mode": "global", "key": ["consumer"]});
    rule.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    limits(json!({
        "headers": true,
        "service": {"cluster": "rls", "domain": "edge", "timeout_ms": 250},
        "rules": [rule, {"name": "local", "requests": 1, "per": "second"}]
    }))
}

fn facts<'a>(headers: &'a Headers, consumer: Option<&'a str>, model: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        path: "/v1/chat/completions",
        headers,
        consumer,
        group: None,
        model,
        client_ip: None,
        prompt_tokens: 40,
        max_tokens: Some(100),
    }
}

fn answer(code: i32, status: Option<DescriptorStatus>) -> CallOutcome {
    let response = RateLimitResponse { overall_code: code, statuses: status.into_iter().collect() };
    CallOutcome::Response { status: 200, headers: Vec::new(), body: response.encode_to_vec() }
}

fn minute_status(code: i32, remaining: u32, reset_secs: i64) -> DescriptorStatus {
    DescriptorStatus {
        code,
        current_limit: Some(RateLimit { requests_per_unit: 10, unit: 2, name: String::new() }),
        limit_remaining: remaining,
        duration_until_reset: Some(proto::Duration { seconds: reset_secs, nanos: 0 }),
    }
}

fn reply_of(answer: GlobalAnswer) -> LocalReply {
    match answer {
        GlobalAnswer::Refuse(reply) => reply,
        GlobalAnswer::Admit { .. } => panic!("expected a refusal"),
    }
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn code(reply: &LocalReply) -> String {
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    body["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn a_request_rule_asks_the_service_with_its_descriptor_and_one_hit() {
    let limits = fleet(json!({}));
    let headers = Headers::default();
    let checks = limits.global_checks(&facts(&headers, Some("alice"), None));
    assert_eq!(checks.len(), 1, "the local rule is not asked of the service");
    let call = limits.global_call(&checks[0]).unwrap();
    assert_eq!(call.cluster, "rls");
    assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
    assert_eq!(call.method, "ShouldRateLimit");
    assert_eq!(call.timeout, Duration::from_millis(250));
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(request.domain, "edge");
    assert_eq!(request.hits_addend, 1);
    let entries: Vec<(&str, &str)> =
        request.descriptors[0].entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
    assert_eq!(entries, [("rule", "fleet"), ("consumer", "alice")]);
}

#[test]
fn a_rule_whose_key_is_missing_is_not_asked() {
    let limits = fleet(json!({}));
    let headers = Headers::default();
    assert!(limits.global_checks(&facts(&headers, None, None)).is_empty());
    assert!(limits.has_global_rules());
}

#[test]
fn header_keys_use_the_header_name_as_descriptor_key() {
    let limits = fleet(json!({"key": [{"header": "X-Team"}, "model"], "counts": "tokens"}));
    let headers: Headers = [("x-team", "red")].into_iter().collect();
    assert!(limits.global_checks(&facts(&headers, None, None)).is_empty(), "token rules need a model");
    let checks = limits.global_checks(&facts(&headers, None, Some("gpt-4o")));
    let request =
        RateLimitRequest::decode(limits.global_call(&checks[0]).unwrap().message.as_slice()).unwrap();
    let keys: Vec<&str> = request.descriptors[0].entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["rule", "x-team", "model"]);
    assert_eq!(request.hits_addend, 40, "a token rule adds the prompt estimate before forwarding");
}

#[test]
fn ok_admits_with_the_services_quota_as_ratelimit_fields() {
    let limits = fleet(json!({}));
    let host = MemoryHost::default();
    let headers = Headers::default();
    let check = limits.global_checks(&facts(&headers, Some("alice"), None)).remove(0);
    let admitted =
        limits.global_answer(&check, &answer(CODE_OK, Some(minute_status(CODE_OK, 7, 42))), host.ports());
    let GlobalAnswer::Admit { headers } = admitted else { panic!("expected admit") };
    assert_eq!(
        headers,
        vec![
            ("ratelimit-policy".to_string(), "\"fleet\";q=10;w=60".to_string()),
            ("ratelimit".to_string(), "\"fleet\";r=7;t=42".to_string()),
        ]
    );
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.allowed"), 1);
}

#[test]
fn over_limit_refuses_with_429_and_the_services_reset_as_retry_after() {
    let limits = fleet(json!({}));
    let host = MemoryHost::default();
    let headers = Headers::default();
    let check = limits.global_checks(&facts(&headers, Some("alice"), None)).remove(0);
    let over = answer(CODE_OVER_LIMIT, Some(minute_status(CODE_OVER_LIMIT, 0, 17)));
    let reply = reply_of(limits.global_answer(&check, &over, host.ports()));
    assert_eq!(reply.status, 429);
    assert_eq!(code(&reply), "rate_limited");
    assert_eq!(header(&reply, "retry-after"), Some("17"));
    assert_eq!(header(&reply, "ratelimit"), Some("\"fleet\";r=0;t=17"));
    assert!(String::from_utf8_lossy(&reply.body).contains("fleet"));
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.limited"), 1);
}

#[test]
fn over_limit_without_status_still_refuses_and_waits_a_second() {
    let limits = fleet(json!({"counts": "tokens"}));
    let host = MemoryHost::default();
    let headers = Headers::default();
    let check = limits.global_checks(&facts(&headers, Some("alice"), Some("m"))).remove(0);
    let reply = reply_of(limits.global_answer(&check, &answer(CODE_OVER_LIMIT, None), host.ports()));
    assert_eq!((reply.status, code(&reply).as_str()), (429, "token_limit"));
    assert_eq!(header(&reply, "retry-after"), Some("1"));
}

#[test]
fn shadow_rules_count_but_admit() {
    let limits = fleet(json!({"shadow": true, "failure_mode": "closed"}));
    let host = MemoryHost::default();
    let headers = Headers::default();
    let check = limits.global_checks(&facts(&headers, Some("alice"), None)).remove(0);
    let over = limits.global_answer(&check, &answer(CODE_OVER_LIMIT, None), host.ports());
    assert_eq!(over, GlobalAnswer::Admit { headers: Vec::new() });
    let failed = CallOutcome::Failed { reason: "timeout".into() };
    assert!(matches!(limits.global_answer(&check, &failed, host.ports()), GlobalAnswer::Admit { .. }));
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.shadow_limited"), 1);
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.limited"), 0);
}

#[test]
fn failures_follow_the_rules_failure_mode() {
    let headers = Headers::default();
    let failures = [
        CallOutcome::Failed { reason: "gRPC status 14: unavailable".into() },
        CallOutcome::Response { status: 200, headers: Vec::new(), body: vec![0xff, 0xff, 0xff] },
    ];
    for failure in &failures {
        let host = MemoryHost::default();
        let open = fleet(json!({}));
        let check = open.global_checks(&facts(&headers, Some("alice"), None)).remove(0);
        assert!(matches!(open.global_answer(&check, failure, host.ports()), GlobalAnswer::Admit { .. }));
        assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.failed_open"), 1);

        let closed = fleet(json!({"failure_mode": "closed"}));
        let reply = reply_of(closed.global_answer(&check, failure, host.ports()));
        assert_eq!((reply.status, code(&reply).as_str()), (503, "rate_limit_service_unavailable"));
        assert_eq!(header(&reply, "retry-after"), Some("1"));
        assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.failed_closed"), 1);
        assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.service_errors"), 2);
    }
}

#[test]
fn token_rules_report_the_rest_of_the_real_usage_afterwards() {
    let limits = fleet(json!({"counts": "tokens"}));
    let host = MemoryHost::default();
    let headers = Headers::default();
    let check = limits.global_checks(&facts(&headers, Some("alice"), Some("m"))).remove(0);
    let usage = Usage { input_tokens: 30, output_tokens: 25, ..Usage::default() };
    let call = limits.global_settle(&check, &usage, host.ports()).unwrap();
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(request.hits_addend, 15, "55 used, 40 added before forwarding");
    assert_eq!(host.metric("tollgate_ratelimit.rule.fleet.tokens_reported"), 15);
    let small = Usage { input_tokens: 30, output_tokens: 5, ..Usage::default() };
    assert_eq!(limits.global_settle(&check, &small, host.ports()), None, "the estimate covered it");

    let requests = fleet(json!({}));
    let check = requests.global_checks(&facts(&headers, Some("alice"), None)).remove(0);
    assert_eq!(requests.global_settle(&check, &usage, host.ports()), None);
}

#[test]
fn local_check_ignores_global_rules() {
    let limits = fleet(json!({}));
    let host = MemoryHost::default();
    limits.prepare(host.ports()).unwrap();
    let headers = Headers::default();
    let facts = facts(&headers, Some("alice"), None);
    assert!(matches!(limits.check(&facts, host.ports()), crate::Decision::Allow { .. }));
    assert!(matches!(limits.check(&facts, host.ports()), crate::Decision::Limit { .. }), "local rule: 1/s");
}

#[test]
fn global_config_errors_name_the_field() {
    let error = |section: serde_json::Value| {
        let raw: RawRateLimitConfig = serde_json::from_value(section).unwrap();
        RateLimits::compile(raw, &ConfigPath::root().field("ratelimit")).unwrap_err().to_string()
    };
    let service = json!({"cluster": "rls"});
    assert_eq!(
        error(json!({"rules": [{"name": "g", "mode": "global"}]})),
        "ratelimit.rules[0].mode: a global rule needs ratelimit.service (the rate limit service)"
    );
    assert!(error(json!({"service": service, "rules": [{"name": "g", "mode": "global", "requests": 5}]}))
        .starts_with("ratelimit.rules[0].requests: applies to local rules only"));
    assert!(error(json!({"service": service, "rules": [{"name": "g", "mode": "global", "per": "minute"}]}))
        .starts_with("ratelimit.rules[0].per: applies to local rules only"));
    assert_eq!(
        error(json!({"service": service, "rules": [{"name": "g", "mode": "global", "counts": "money"}]})),
        "ratelimit.rules[0].counts: unknown \"money\" (requests, tokens)"
    );
    assert_eq!(
        error(
            json!({"service": service, "rules": [{"name": "g", "mode": "global", "failure_mode": "shut"}]})
        ),
        "ratelimit.rules[0].failure_mode: unknown \"shut\" (open, closed)"
    );
    assert_eq!(
        error(json!({"service": service, "rules": [{"name": "g", "mode": "global", "timeout_ms": 0}]})),
        "ratelimit.rules[0].timeout_ms: must be 1 to 60000 milliseconds"
    );
    assert_eq!(
        error(json!({"rules": [{"name": "l", "requests": 5, "per": "minute", "failure_mode": "open"}]})),
        "ratelimit.rules[0].failure_mode: applies to global rules only (\"mode\": \"global\")"
    );
    assert_eq!(
        error(json!({"rules": [{"name": "l", "requests": 5}]})),
        "ratelimit.rules[0].per: is required: second, minute, hour, day or month"
    );
    assert_eq!(
        error(json!({"service": {"cluster": ""}})),
        "ratelimit.service.cluster: must name the Envoy cluster of the rate limit service"
    );
    assert_eq!(
        error(json!({"service": {"cluster": "rls", "timeout_ms": 600000}})),
        "ratelimit.service.timeout_ms: must be 1 to 60000 milliseconds"
    );
}

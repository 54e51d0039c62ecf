use crate::Usage;

use super::*;

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn ai<'a>(h: &'a Headers, consumer: &'a str, prompt: u64, max: Option<u64>) -> RequestFacts<'a> {
    RequestFacts { model: Some("gpt-4o"), prompt_tokens: prompt, max_tokens: max, ..facts(h, Some(consumer)) }
}

fn tokens_section() -> serde_json::Value {
    json!({"rules": [{"name": "tpm", "key": ["consumer"], "tokens": 1000, "per": "minute"}], "default_max_tokens": 300})
}

#[test]
fn reservations_refuse_what_does_not_fit_and_settle_refunds_the_rest() {
    let host = MemoryHost::default();
    let limits = worker(&tokens_section(), &host);
    let h = Headers::new();
    // 100 prompt + 300 default max = 400 held, twice.
    let first = admitted(limits.check(&ai(&h, "alice", 100, None), host.ports())).unwrap();
    assert_eq!(first.held("tpm"), Some(400));
    let second = admitted(limits.check(&ai(&h, "alice", 100, None), host.ports())).unwrap();
    let reply = refusal(limits.check(&ai(&h, "alice", 100, None), host.ports()));
    assert_eq!(reply.status, 429);
    assert_eq!(body(&reply)["error"]["code"], "token_limit");
    assert!(header(&reply, "retry-after").is_some());
    // The first used only 150: 250 come back, so a 400 reservation fits again.
    limits.settle(first, &usage(100, 50), host.ports());
    assert_eq!(host.metric("tollgate_ratelimit.rule.tpm.tokens_reserved"), 800);
    assert_eq!(host.metric("tollgate_ratelimit.rule.tpm.tokens_settled"), 150);
    assert_eq!(host.metric("tollgate_ratelimit.rule.tpm.tokens_refunded"), 250);
    let third = admitted(limits.check(&ai(&h, "alice", 100, None), host.ports())).unwrap();
    // 150 + 400 + 400 = 950 used; nothing else fits.
    assert!(admitted(limits.check(&ai(&h, "alice", 10, Some(50)), host.ports())).is_none());
    // A request that died before any usage gives everything back; one that died mid-way pays what it used.
    limits.release(second, None, host.ports());
    limits.release(third, Some(&usage(100, 100)), host.ports());
    // Used: 150 + 200 = 350; 650 left.
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(650)), host.ports())).is_some());
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(1)), host.ports())).is_none());
}

#[test]
fn usage_beyond_the_estimate_is_charged_in_full() {
    let host = MemoryHost::default();
    let limits = worker(&tokens_section(), &host);
    let h = Headers::new();
    let r = admitted(limits.check(&ai(&h, "alice", 0, Some(100)), host.ports())).unwrap();
    limits.settle(r, &usage(500, 400), host.ports());
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(100)), host.ports())).is_some());
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(1)), host.ports())).is_none());
}

#[test]
fn a_new_window_starts_empty_and_late_settlements_count_in_it() {
    let host = MemoryHost::default();
    let limits = worker(&tokens_section(), &host);
    let h = Headers::new();
    let r = admitted(limits.check(&ai(&h, "alice", 0, Some(1000)), host.ports())).unwrap();
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(1)), host.ports())).is_none());
    host.advance(MINUTE);
    limits.settle(r, &usage(0, 600), host.ports());
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(400)), host.ports())).is_some());
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(1)), host.ports())).is_none());
}

#[test]
fn token_rules_skip_requests_without_a_model() {
    let host = MemoryHost::default();
    let limits = worker(&tokens_section(), &host);
    let h = Headers::new();
    for _ in 0..10 {
        let r = admitted(limits.check(&facts(&h, Some("alice")), host.ports())).unwrap();
        assert_eq!(r.held("tpm"), None);
        limits.settle(r, &Usage::default(), host.ports());
    }
}

fn budget_section() -> serde_json::Value {
    json!({
        "currency": "USD",
        "default_max_tokens": 1000,
        "rules": [{"name": "spend", "key": ["consumer"], "budget": 1.0, "per": "day"}],
        "prices": {
            "models": {"gpt-4o": {"input": 100, "output": 400}},
            "consumers": {"vip": {"gpt-4o": {"input": 10, "output": 40}}}
        }
    })
}

#[test]
fn budgets_hold_the_estimated_cost_and_settle_the_real_one() {
    let host = MemoryHost::default();
    let limits = worker(&budget_section(), &host);
    let h = Headers::new();
    // 1000 prompt at 100/M + 1000 output at 400/M = 0.5 USD held.
    let a = admitted(limits.check(&ai(&h, "alice", 1000, None), host.ports())).unwrap();
    assert_eq!(a.held("spend"), Some(500_000));
    let b = admitted(limits.check(&ai(&h, "alice", 1000, None), host.ports())).unwrap();
    let reply = refusal(limits.check(&ai(&h, "alice", 1000, None), host.ports()));
    assert_eq!(body(&reply)["error"]["code"], "budget_exceeded");
    let message = body(&reply)["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("0.500000 USD") && message.contains("\"spend\""), "{message}");
    // a used 0.1 USD; b died unused.
    limits.settle(a, &usage(1000, 0), host.ports());
    limits.release(b, None, host.ports());
    assert_eq!(host.metric("tollgate_ratelimit.cost_micros.alice.gpt-4o"), 100_000);
    let c = admitted(limits.check(&ai(&h, "alice", 1000, None), host.ports())).unwrap();
    limits.settle(c, &usage(1000, 1000), host.ports());
    assert_eq!(host.metric("tollgate_ratelimit.cost_micros.alice.gpt-4o"), 600_000);
    assert_eq!(host.metric("tollgate_ratelimit.rule.spend.cost_micros_refunded"), 900_000);
    // The VIP's override makes the same request ten times cheaper.
    let vip = admitted(limits.check(&ai(&h, "vip", 1000, None), host.ports())).unwrap();
    assert_eq!(vip.held("spend"), Some(50_000));
    limits.settle(vip, &usage(1000, 1000), host.ports());
}

#[test]
fn unpriced_models_are_refused_by_budget_rules() {
    let host = MemoryHost::default();
    let limits = worker(&budget_section(), &host);
    let h = Headers::new();
    let f = RequestFacts { model: Some("mystery"), ..ai(&h, "alice", 10, None) };
    let reply = refusal(limits.check(&f, host.ports()));
    assert_eq!(reply.status, 403);
    assert_eq!(body(&reply)["error"]["code"], "model_not_priced");
    assert_eq!(header(&reply, "retry-after"), None);
}

#[test]
fn a_later_refusal_releases_an_earlier_reservation() {
    let host = MemoryHost::default();
    let limits = worker(
        &json!({"rules": [
            {"name": "tpm", "tokens": 1000, "per": "minute"},
            {"name": "rpm", "key": ["consumer"], "requests": 1, "per": "minute"}
        ]}),
        &host,
    );
    let h = Headers::new();
    let r = admitted(limits.check(&ai(&h, "alice", 0, Some(400)), host.ports())).unwrap();
    // Alice's second request is held by tpm, then refused by rpm: the hold must come back.
    assert!(admitted(limits.check(&ai(&h, "alice", 0, Some(400)), host.ports())).is_none());
    assert_eq!(host.metric("tollgate_ratelimit.rule.tpm.tokens_refunded"), 400);
    assert!(admitted(limits.check(&ai(&h, "bob", 0, Some(600)), host.ports())).is_some());
    limits.settle(r, &usage(0, 400), host.ports());
}

#[test]
fn two_workers_never_overshoot_a_budget() {
    let host = MemoryHost::default();
    let section = json!({"rules": [{"name": "tpd", "tokens": 10_000, "per": "day"}]});
    let (a, b) = (worker(&section, &host), worker(&section, &host));
    let h = Headers::new();
    let mut held = Vec::new();
    for i in 0..40 {
        let limits = if i % 2 == 0 { &a } else { &b };
        if let Some(r) = admitted(limits.check(&ai(&h, "x", 300, Some(700)), host.ports())) {
            held.push((i, r));
        }
    }
    assert_eq!(held.len(), 10);
    for (i, r) in held {
        let limits = if i % 2 == 0 { &b } else { &a };
        limits.settle(r, &usage(300, 700), host.ports());
    }
    assert!(admitted(a.check(&ai(&h, "x", 0, Some(1)), host.ports())).is_none());
}

#[test]
fn shadow_budgets_report_without_refusing() {
    let host = MemoryHost::default();
    let mut section = budget_section();
    section["rules"][0]["shadow"] = json!(true);
    let limits = worker(&section, &host);
    let h = Headers::new();
    for _ in 0..4 {
        let r = admitted(limits.check(&ai(&h, "alice", 1000, None), host.ports())).unwrap();
        limits.release(r, None, host.ports());
    }
    for _ in 0..4 {
        assert!(admitted(limits.check(&ai(&h, "alice", 1000, None), host.ports())).is_some());
    }
    assert_eq!(host.metric("tollgate_ratelimit.rule.spend.shadow_limited"), 2);
}

use super::*;

#[test]
fn one_worker_admits_the_limit_then_refuses_with_headers_and_json() {
    let host = MemoryHost::default();
    let limits = worker(
        &rule_section(json!({"name": "per-user", "key": ["consumer"], "requests": 3, "per": "minute"})),
        &host,
    );
    let h = Headers::new();
    let f = facts(&h, Some("alice"));
    for remaining in [2, 1, 0] {
        let Decision::Allow { headers, reservation } = limits.check(&f, host.ports()) else {
            panic!("refused")
        };
        assert_eq!(headers.set[0], ("ratelimit-policy".into(), "\"per-user\";q=3;w=60".into()));
        assert_eq!(headers.set[1].1, format!("\"per-user\";r={remaining};t={}", 20 * (3 - remaining)));
        limits.settle(reservation, &Default::default(), host.ports());
    }
    let reply = refusal(limits.check(&f, host.ports()));
    assert_eq!(reply.status, 429);
    assert_eq!(header(&reply, "retry-after"), Some("20"));
    assert_eq!(header(&reply, "ratelimit"), Some("\"per-user\";r=0;t=60"));
    let body = body(&reply);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].as_str().unwrap().contains("\"per-user\""));
    assert_eq!(host.metric("tollgate_ratelimit.rule.per-user.allowed"), 3);
    assert_eq!(host.metric("tollgate_ratelimit.rule.per-user.limited"), 1);
    // Another consumer has its own bucket; time refills alice's.
    assert!(admitted(limits.check(&facts(&h, Some("bob")), host.ports())).is_some());
    host.advance(Duration::from_secs(20));
    assert!(admitted(limits.check(&f, host.ports())).is_some());
    assert!(admitted(limits.check(&f, host.ports())).is_none());
}

#[test]
fn two_workers_interleaved_admit_exactly_the_limit() {
    let host = MemoryHost::default();
    let section = rule_section(json!({"name": "global", "requests": 25, "per": "hour"}));
    let (a, b) = (worker(&section, &host), worker(&section, &host));
    let h = Headers::new();
    let f = facts(&h, None);
    let mut admitted_count = 0;
    for i in 0..100 {
        let limits = if i % 3 == 0 { &a } else { &b };
        admitted_count += usize::from(admitted(limits.check(&f, host.ports())).is_some());
    }
    assert_eq!(admitted_count, 25);
}

/// A store through which, at this worker's first read, another worker admits a request a moment later
/// than this worker's request began: what two Envoy workers racing on one key can do.
struct Overtaken<'a> {
    host: &'a MemoryHost,
    other: &'a RateLimits,
    facts: RequestFacts<'a>,
    pending: Cell<bool>,
    overtaken: Cell<Option<String>>,
}

impl SharedStore for Overtaken<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasToken)>, StoreError> {
        if self.pending.replace(false) {
            self.host.advance(Duration::from_millis(500));
            let Decision::Allow { headers, .. } = self.other.check(&self.facts, self.host.ports()) else {
                panic!("the other worker was refused")
            };
            self.overtaken.set(Some(headers.set[1].1.clone()));
        }
        self.host.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<CasToken>) -> Result<(), StoreError> {
        self.host.set(key, value, cas)
    }
}

#[test]
fn remaining_counts_down_even_when_another_worker_overtakes_between_clock_and_slot() {
    let host = MemoryHost::default();
    // One request costs 600 ms of a 100-per-minute bucket; the other worker comes 500 ms later.
    let section = rule_section(json!({"name": "r", "requests": 100, "per": "minute"}));
    let (a, b) = (worker(&section, &host), worker(&section, &host));
    let h = Headers::new();
    let store = Overtaken {
        host: &host,
        other: &b,
        facts: facts(&h, None),
        pending: Cell::new(true),
        overtaken: Cell::new(None),
    };
    let Decision::Allow { headers, .. } = a.check(&facts(&h, None), ports_with(&host, &host, &store)) else {
        panic!("refused")
    };
    let theirs = store.overtaken.take().expect("the other worker went first");
    assert_eq!(theirs, "\"r\";r=99;t=1");
    assert_eq!(headers.set[1].1, "\"r\";r=98;t=2", "one fewer than the worker before, not two");
}

#[test]
fn cas_conflicts_are_retried_and_stay_exact() {
    let host = MemoryHost::default();
    let section = rule_section(json!({"name": "r", "requests": 5, "per": "minute"}));
    let (a, b) = (worker(&section, &host), worker(&section, &host));
    let busy = Conflicting { inner: &host, every: 2, writes: Cell::new(0) };
    let clock = HandClock(Cell::new(host.now()));
    let h = Headers::new();
    let f = facts(&h, None);
    let mut n = 0;
    for i in 0..12 {
        let ports = if i % 2 == 0 { ports_with(&host, &clock, &busy) } else { host.ports() };
        let limits = if i % 2 == 0 { &a } else { &b };
        n += usize::from(admitted(limits.check(&f, ports)).is_some());
    }
    assert_eq!(n, 5);
    assert!(busy.writes.get() >= 6, "every other write was refused and retried");
}

#[test]
fn a_key_that_never_wins_the_cas_is_refused_not_waved_through() {
    let host = MemoryHost::default();
    let limits = worker(&rule_section(json!({"name": "r", "requests": 5, "per": "minute"})), &host);
    let hopeless = Conflicting { inner: &host, every: 0, writes: Cell::new(0) };
    let h = Headers::new();
    let reply = refusal(limits.check(&facts(&h, None), ports_with(&host, &host, &hopeless)));
    assert_eq!(reply.status, 429);
    assert_eq!(header(&reply, "retry-after"), Some("1"));
    assert!(body(&reply)["error"]["message"].as_str().unwrap().contains("too busy"));
}

#[test]
fn idle_keys_are_evicted_and_a_full_key_space_refuses() {
    let host = MemoryHost::default();
    let limits = worker(
        &rule_section(
            json!({"name": "r", "key": ["consumer"], "requests": 1, "per": "second", "max_keys": 2}),
        ),
        &host,
    );
    let h = Headers::new();
    let check = |who| admitted(limits.check(&facts(&h, Some(who)), host.ports())).is_some();
    assert!(check("alice") && check("bob"));
    let reply = refusal(limits.check(&facts(&h, Some("carol")), host.ports()));
    assert!(body(&reply)["error"]["message"].as_str().unwrap().contains("too many clients"));
    // A second later alice and bob are idle; carol takes a slot and the others still get fresh buckets.
    host.advance(Duration::from_secs(1));
    assert!(check("carol"));
    assert!(check("alice"));
    assert!(!check("alice"), "alice's new slot limits her as before");
}

#[test]
fn a_clock_jumping_back_neither_admits_more_nor_blocks_for_the_jump() {
    let host = MemoryHost::default();
    let limits = worker(&rule_section(json!({"name": "r", "requests": 2, "per": "minute"})), &host);
    let clock = HandClock(Cell::new(host.now()));
    let ports = ports_with(&host, &clock, &host);
    let h = Headers::new();
    let f = facts(&h, None);
    assert!(admitted(limits.check(&f, ports)).is_some());
    assert!(admitted(limits.check(&f, ports)).is_some());
    clock.0.set(host.now() - Duration::from_secs(3_600));
    assert!(admitted(limits.check(&f, ports)).is_none());
    clock.0.set(clock.0.get() + Duration::from_secs(30));
    assert!(admitted(limits.check(&f, ports)).is_some(), "one interval after the jump, not an hour");
    assert!(admitted(limits.check(&f, ports)).is_none());
}

#[test]
fn shadow_rules_count_but_never_refuse() {
    let host = MemoryHost::default();
    let limits = worker(
        &rule_section(json!({"name": "trial", "requests": 2, "per": "minute", "shadow": true})),
        &host,
    );
    let h = Headers::new();
    for _ in 0..5 {
        let Decision::Allow { headers, .. } = limits.check(&facts(&h, None), host.ports()) else {
            panic!("refused")
        };
        assert!(headers.is_empty(), "shadow rules are not advertised");
    }
    assert_eq!(host.metric("tollgate_ratelimit.rule.trial.allowed"), 2);
    assert_eq!(host.metric("tollgate_ratelimit.rule.trial.shadow_limited"), 3);
    assert_eq!(host.metric("tollgate_ratelimit.rule.trial.limited"), 0);
}

#[test]
fn a_refusal_gives_back_what_earlier_rules_took() {
    let host = MemoryHost::default();
    let limits = worker(
        &json!({"rules": [
            {"name": "wide", "requests": 3, "per": "minute"},
            {"name": "narrow", "key": ["consumer"], "requests": 1, "per": "minute"}
        ]}),
        &host,
    );
    let h = Headers::new();
    let alice = facts(&h, Some("alice"));
    assert!(admitted(limits.check(&alice, host.ports())).is_some());
    for _ in 0..5 {
        assert!(admitted(limits.check(&alice, host.ports())).is_none());
    }
    // Alice's refusals did not spend the shared "wide" limit: two more consumers still fit.
    assert!(admitted(limits.check(&facts(&h, Some("bob")), host.ports())).is_some());
    assert!(admitted(limits.check(&facts(&h, Some("carol")), host.ports())).is_some());
    assert!(admitted(limits.check(&facts(&h, Some("dave")), host.ports())).is_none());
}

#[test]
fn rules_apply_only_where_routes_and_key_parts_match() {
    let host = MemoryHost::default();
    let limits = worker(
        &json!({"rules": [
            {"name": "chat", "key": ["route", {"header": "x-team"}], "routes": ["/v1/chat", "/v1/embeddings"], "requests": 1, "per": "day"}
        ]}),
        &host,
    );
    let red: Headers = [("x-team", "red")].into_iter().collect();
    let blue: Headers = [("X-Team", "blue")].into_iter().collect();
    let none = Headers::new();
    let on = |h: &Headers, path: &'static str| {
        let f = RequestFacts { path, ..facts(h, None) };
        admitted(limits.check(&f, host.ports())).is_some()
    };
    assert!(on(&red, "/v1/chat/completions"));
    assert!(!on(&red, "/v1/chat/completions"));
    assert!(on(&red, "/v1/embeddings"), "each route prefix is its own key");
    assert!(on(&blue, "/v1/chat/completions"));
    assert!(on(&red, "/healthz") && on(&red, "/healthz"), "outside the routes");
    assert!(on(&none, "/v1/chat") && on(&none, "/v1/chat"), "no x-team header: the rule does not apply");
}

#[test]
fn facts_come_from_the_head() {
    let head = tollgate_core::RequestHead::from_pairs([(":path", "/v1/x?y=1"), ("x-a", "b")]);
    let f = RequestFacts::new(&head);
    assert_eq!(f.path, "/v1/x");
    assert_eq!(f.headers.get("x-a"), Some("b"));
}

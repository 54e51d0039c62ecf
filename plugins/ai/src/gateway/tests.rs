mod stub;

use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{ConfigPath, Headers, RequestHead, ResponseHead};

use super::*;
use crate::AiError;
use stub::StubAdapter;

fn ai_with(extra: Value) -> Ai {
    let mut config = json!({
        "providers": [
            {"name": "stub", "kind": "openai_compatible", "cluster": "stub_cluster",
             "base_url": "http://stub.internal:8080/api/", "api_key": "sk-provider-secret"},
            {"name": "other", "kind": "openai_compatible", "cluster": "other_cluster", "base_url": "https://other.example"}
        ],
        "models": [
            {"name": "fast", "provider": "stub", "model": "stub-fast-v2"},
            {"name": "stub-*", "provider": "stub", "model": "upstream-*"},
            {"name": "big", "provider": "other"},
            {"name": "fast", "provider": "other"}
        ]
    });
    if let (Some(base), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    // A duplicated exact name is refused; drop it unless a test wants to see that.
    config["models"].as_array_mut().unwrap().pop();
    let raw: RawAiConfig = serde_json::from_value(config).unwrap();
    Ai::compile_with(raw, &ConfigPath::root().field("ai"), |_, settings| Box::new(StubAdapter(settings)))
        .unwrap()
}

fn ai() -> Ai {
    ai_with(json!({}))
}

fn everyone(_: &str) -> bool {
    true
}

fn caller() -> Caller<'static> {
    Caller { consumer: Some("alice"), may_use_model: &everyone }
}

fn post(path: &str) -> RequestHead {
    RequestHead::from_pairs([
        (":method", "POST"),
        (":path", path),
        ("authorization", "Bearer client-key"),
        ("x-tollgate-cluster", "attacker"),
        ("accept-encoding", "gzip"),
        ("x-request-id", "req-1"),
    ])
}

/// Runs a chat request through head and body; the upstream headers, or the error.
fn send(ai: &Ai, stream: &mut AiStream, body: Value, host: &MemoryHost) -> Result<(Headers, Value), AiError> {
    let head = post(CHAT_PATH);
    assert_eq!(ai.on_request_head(stream, &head, &caller()), AiHead::NeedBody);
    assert!(stream.reads_request_body());
    let AiRequest::Upstream { head: edits, body: upstream } =
        ai.on_request_body(stream, body.to_string().as_bytes(), host.ports())?
    else {
        panic!("answered without a provider")
    };
    let mut headers = head.headers.clone();
    for (name, value) in [(":path", head.path.as_str()), (":authority", "gateway.example")] {
        headers.set(name, value);
    }
    edits.apply_to(&mut headers);
    Ok((headers, serde_json::from_slice(&upstream).unwrap()))
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn status_and_body(reply: &LocalReply) -> (u16, Value) {
    (reply.status, serde_json::from_slice(&reply.body).unwrap())
}

#[test]
fn a_chat_request_is_routed_and_translated_with_the_providers_credential_only() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = AiStream::default();
    let (headers, body) = send(&ai, &mut stream, chat("fast"), &host).unwrap();
    assert_eq!(body, json!({"model": "stub-fast-v2", "turns": 1}));
    assert_eq!(headers.get(":path"), Some("/api/generate"));
    assert_eq!(headers.get(":authority"), Some("stub.internal:8080"));
    assert_eq!(headers.get_all("x-tollgate-cluster").collect::<Vec<_>>(), ["stub_cluster"]);
    assert_eq!(headers.get("x-stub-key"), Some("sk-provider-secret"));
    assert_eq!(headers.get("content-type"), Some("application/json"));
    for gone in ["authorization", "accept-encoding"] {
        assert_eq!(headers.get(gone), None, "{gone}");
    }
    assert!(!stream.reads_request_body());
    assert!(stream.reads_response_body());
    assert_eq!(host.metric("tollgate_ai_requests.provider.stub.model.fast.consumer.alice"), 1);
}

/// Removals are host calls: a request without client credentials or `accept-encoding` asks for none.
#[test]
fn only_headers_the_client_sent_are_removed() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = AiStream::default();
    let head = RequestHead::from_pairs([(":method", "POST"), (":path", CHAT_PATH)]);
    assert_eq!(ai.on_request_head(&mut stream, &head, &caller()), AiHead::NeedBody);
    let Ok(AiRequest::Upstream { head: edits, .. }) =
        ai.on_request_body(&mut stream, chat("fast").to_string().as_bytes(), host.ports())
    else {
        panic!("not forwarded")
    };
    assert!(edits.remove.is_empty(), "{:?}", edits.remove);
    let other = RequestHead::from_pairs([(":method", "GET"), (":path", "/healthz")]);
    assert_eq!(
        ai.on_request_head(&mut AiStream::default(), &other, &caller()),
        AiHead::Pass(Default::default())
    );
}

#[test]
fn wildcards_insert_what_they_matched_and_count_under_their_pattern() {
    let (ai, host) = (ai(), MemoryHost::default());
    let (_, body) = send(&ai, &mut AiStream::default(), chat("stub-x.1"), &host).unwrap();
    assert_eq!(body["model"], "upstream-x.1");
    assert_eq!(host.metric("tollgate_ai_requests.provider.stub.model.stub-_.consumer.alice"), 1);
}

#[test]
fn malformed_bodies_are_400s_naming_the_field() {
    let (ai, host) = (ai(), MemoryHost::default());
    let bad_role =
        json!({"model": "fast", "messages": [{"role": "user", "content": "a"}, {"role": "robot"}]});
    let err = send(&ai, &mut AiStream::default(), bad_role, &host).unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(err.to_string().starts_with("messages[1].role: unknown variant `robot`"), "{err}");
    assert_eq!(err.to_openai_json()["error"]["param"], "messages[1].role");

    let err = send(&ai, &mut AiStream::default(), json!({"model": "fast"}), &host).unwrap_err();
    assert!(err.to_string().contains("missing field `messages`"), "{err}");

    for raw in [&b"{\"model\": "[..], b"\xff\xfe", b"[1]"] {
        let mut stream = AiStream::default();
        ai.on_request_head(&mut stream, &post(CHAT_PATH), &caller());
        let err = ai.on_request_body(&mut stream, raw, host.ports()).unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(!stream.reads_response_body());
    }
    assert_eq!(host.metric("tollgate_ai_errors.provider.none.model.none.consumer.alice"), 5);
}

#[test]
fn unknown_models_are_404s_and_oversized_bodies_413s() {
    let (ai, host) = (ai_with(json!({"limits": {"max_request_bytes": 200}})), MemoryHost::default());
    let err = send(&ai, &mut AiStream::default(), chat("gpt-9"), &host).unwrap_err();
    assert_eq!(err, AiError::UnknownModel("gpt-9".into()));
    let err = send(&ai, &mut AiStream::default(), chat(&"x".repeat(300)), &host).unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(ai.check_request_size(200).is_ok());
    assert_eq!(ai.check_request_size(201).map_err(|e| e.status()), Err(413));
}

#[test]
fn dropped_fields_are_listed_or_refused() {
    let host = MemoryHost::default();
    let mut request = chat("fast");
    request["seed"] = json!(7);

    let rejecting = ai_with(json!({"unsupported_fields": "reject"}));
    let err = send(&rejecting, &mut AiStream::default(), request.clone(), &host).unwrap_err();
    assert_eq!(err, AiError::Unsupported { provider: "stub".into(), fields: vec!["seed".into()] });
    assert_eq!(host.metric("tollgate_ai_errors.provider.stub.model.fast.consumer.alice"), 1);

    let ai = ai();
    let mut stream = AiStream::default();
    send(&ai, &mut stream, request, &host).unwrap();
    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(ai.on_response_head(&mut stream, &head, host.ports()), AiResponseHead::AwaitBody);
    let AiBody::Continue { head, .. } =
        ai.on_response_body(&mut stream, br#"{"text":"x"}"#, true, host.ports())
    else {
        panic!("expected an answer")
    };
    assert!(head.set.contains(&(DROPPED_HEADER.to_string(), "seed".to_string())));
}

#[test]
fn models_lists_exact_names_the_caller_may_use() {
    let ai = ai();
    let only_fast = |m: &str| m == "fast";
    let caller = Caller { consumer: None, may_use_model: &only_fast };
    let head = RequestHead::from_pairs([(":method", "GET"), (":path", "/v1/models")]);
    let AiHead::Reply(reply) = ai.on_request_head(&mut AiStream::default(), &head, &caller) else {
        panic!("expected a reply")
    };
    let (status, body) = status_and_body(&reply);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"object": "list", "data": [{"id": "fast", "object": "model", "created": 0, "owned_by": "stub"}]})
    );
    let AiHead::Reply(all) = ai.on_request_head(&mut AiStream::default(), &head, &super::tests::caller())
    else {
        panic!("expected a reply")
    };
    let ids: Vec<Value> =
        status_and_body(&all).1["data"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!("fast"), json!("big")]);
}

#[test]
fn other_routes_pass_without_a_client_cluster_header_and_wrong_methods_are_405s() {
    let ai = ai();
    let head =
        RequestHead::from_pairs([(":method", "GET"), (":path", "/healthz"), ("x-tollgate-cluster", "x")]);
    let mut stream = AiStream::default();
    assert_eq!(
        ai.on_request_head(&mut stream, &head, &caller()),
        AiHead::Pass(HeaderEdits::default().remove("x-tollgate-cluster"))
    );
    assert!(!stream.reads_request_body() && !stream.reads_response_body());

    for (method, path, allow) in
        [("GET", CHAT_PATH, "POST"), ("PUT", EMBEDDINGS_PATH, "POST"), ("POST", MODELS_PATH, "GET")]
    {
        let head = RequestHead::from_pairs([(":method", method), (":path", path)]);
        let AiHead::Reply(reply) = ai.on_request_head(&mut AiStream::default(), &head, &caller()) else {
            panic!("expected a 405 for {method} {path}")
        };
        assert_eq!(status_and_body(&reply).0, 405);
        assert!(reply.headers.contains(&("allow".to_string(), allow.to_string())));
    }
}

#[test]
fn a_json_answer_is_translated_and_its_usage_kept() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = AiStream::default();
    send(&ai, &mut stream, chat("fast"), &host).unwrap();
    host.advance(std::time::Duration::from_millis(250));
    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(ai.on_response_head(&mut stream, &head, host.ports()), AiResponseHead::AwaitBody);
    assert_eq!(ai.on_response_body(&mut stream, br#"{"text":"hel"#, false, host.ports()), AiBody::Buffer);
    let AiBody::Continue { head, body: Some(body) } =
        ai.on_response_body(&mut stream, br#"{"text":"hello","in":5,"out":2}"#, true, host.ports())
    else {
        panic!("expected an answer")
    };
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["id"], "chatcmpl-req-1");
    assert_eq!(body["choices"][0]["message"]["content"], "hello");
    assert!(head.set.contains(&(PROVIDER_HEADER.to_string(), "stub".to_string())));
    assert!(!head.set.iter().any(|(n, _)| n == ":status"));
    assert_eq!(stream.usage().map(|u| (u.input_tokens, u.output_tokens)), Some((5, 2)));
    let labels = ".provider.stub.model.fast.consumer.alice";
    assert_eq!(host.metric(&format!("tollgate_ai_input_tokens{labels}")), 5);
    assert_eq!(host.metric(&format!("tollgate_ai_output_tokens{labels}")), 2);
    assert_eq!(host.metric(&format!("tollgate_ai_upstream_latency_ms{labels}")), 250);
}

#[test]
fn provider_errors_become_openai_errors_with_the_clients_status() {
    let (ai, host) = (ai(), MemoryHost::default());
    for (status, body, expected) in [
        (429, &br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#[..], 429),
        (503, b"<html>down</html>", 502),
    ] {
        let mut stream = AiStream::default();
        send(&ai, &mut stream, chat("fast"), &host).unwrap();
        let head = ResponseHead::from_pairs([(":status", status.to_string())]);
        assert_eq!(ai.on_response_head(&mut stream, &head, host.ports()), AiResponseHead::AwaitBody);
        let AiBody::Continue { head, body: Some(out) } =
            ai.on_response_body(&mut stream, body, true, host.ports())
        else {
            panic!("expected an answer")
        };
        assert!(head.set.contains(&(":status".to_string(), expected.to_string())));
        assert!(head.set.contains(&("content-type".to_string(), "application/json".to_string())));
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert!(out["error"]["message"].is_string(), "{out}");
        assert_eq!(stream.usage(), None);
    }
    assert_eq!(host.metric("tollgate_ai_errors.provider.stub.model.fast.consumer.alice"), 2);
}

#[test]
fn oversized_answers_are_502s_and_the_rest_is_dropped() {
    let (ai, host) = (ai_with(json!({"limits": {"max_response_bytes": 10}})), MemoryHost::default());
    let mut stream = AiStream::default();
    send(&ai, &mut stream, chat("fast"), &host).unwrap();
    ai.on_response_head(&mut stream, &ResponseHead::from_pairs([(":status", "200")]), host.ports());
    let AiBody::Continue { head, body: Some(_) } =
        ai.on_response_body(&mut stream, &[b' '; 11], false, host.ports())
    else {
        panic!("expected an error answer")
    };
    assert!(head.set.contains(&(":status".to_string(), "502".to_string())));
    assert_eq!(
        ai.on_response_body(&mut stream, b"more", true, host.ports()),
        AiBody::Continue { head: HeaderEdits::default(), body: Some(Vec::new()) }
    );
}

#[test]
fn a_stream_request_answered_with_json_is_a_502() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = AiStream::default();
    let mut request = chat("fast");
    request["stream"] = json!(true);
    send(&ai, &mut stream, request, &host).unwrap();
    let head = ResponseHead::from_pairs([(":status", "200"), ("content-type", "application/json")]);
    assert_eq!(ai.on_response_head(&mut stream, &head, host.ports()), AiResponseHead::AwaitBody);
    let AiBody::Continue { head, .. } =
        ai.on_response_body(&mut stream, br#"{"text":"x"}"#, true, host.ports())
    else {
        panic!("expected an answer")
    };
    assert!(head.set.contains(&(":status".to_string(), "502".to_string())));
}

#[test]
fn embeddings_go_to_the_adapter_which_may_refuse_them() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = AiStream::default();
    assert_eq!(ai.on_request_head(&mut stream, &post(EMBEDDINGS_PATH), &caller()), AiHead::NeedBody);
    let err = ai.on_request_body(&mut stream, br#"{"model":"fast","input":"hi"}"#, host.ports()).unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn the_provider_key_never_appears_in_debug_output() {
    let ai = ai();
    let shown = format!("{ai:?}");
    assert!(shown.contains("stub_cluster"), "{shown}");
    assert!(!shown.contains("sk-provider-secret"), "{shown}");
}

mod streaming;

/// The provider and key a chat for `model` is sent with, after the answer `status` came back for it.
fn route_once(ai: &Ai, model: &str, status: u16, host: &MemoryHost) -> (String, String) {
    let mut stream = AiStream::default();
    let (headers, body) = send(ai, &mut stream, chat(model), host).unwrap();
    let head = ResponseHead::from_pairs([(":status", status.to_string().as_str())]);
    ai.on_response_head(&mut stream, &head, host.ports());
    let cluster = headers.get("x-tollgate-cluster").unwrap_or_default().to_string();
    let _ = body;
    (cluster, headers.get("x-stub-key").unwrap_or_default().to_string())
}

fn failover_ai() -> Ai {
    ai_with(json!({
        "models": [
            {"name": "fast", "provider": "stub", "model": "stub-fast-v2",
             "fallbacks": [{"provider": "other", "model": "other-fast"}]},
            {"name": "big", "provider": "other"},
            {"name": "unused", "provider": "stub"}
        ],
        "failover": {"cooldown_seconds": 30}
    }))
}

#[test]
fn a_failing_provider_cools_down_and_its_models_fail_over_then_come_back() {
    let (ai, host) = (failover_ai(), MemoryHost::default());
    assert_eq!(route_once(&ai, "fast", 200, &host).0, "stub_cluster");
    // A 503 (or a 429, or Envoy's own 504 for a timeout) starts the cooldown: new requests go to the fallback.
    assert_eq!(route_once(&ai, "fast", 503, &host).0, "stub_cluster");
    let mut stream = AiStream::default();
    let (headers, upstream) = send(&ai, &mut stream, chat("fast"), &host).unwrap();
    assert_eq!(headers.get("x-tollgate-cluster"), Some("other_cluster"));
    assert_eq!(upstream["model"], "other-fast", "the fallback's own model name");
    assert_eq!(host.metric("tollgate_ai_failovers.provider.other.model.fast.consumer.alice"), 1);
    assert_eq!(host.metric("tollgate_ai_cooldowns.provider.stub.model.fast.consumer.alice"), 1);
    // Still cooling 29 s later; back after the cooldown.
    host.advance(std::time::Duration::from_secs(29));
    assert_eq!(route_once(&ai, "fast", 200, &host).0, "other_cluster");
    host.advance(std::time::Duration::from_secs(2));
    assert_eq!(route_once(&ai, "fast", 200, &host).0, "stub_cluster");
    // 4xx other than 429 is the client's problem, not the provider's.
    assert_eq!(route_once(&ai, "fast", 400, &host).0, "stub_cluster");
    assert_eq!(route_once(&ai, "fast", 200, &host).0, "stub_cluster");
}

#[test]
fn when_every_provider_cools_down_the_one_back_soonest_serves() {
    let (ai, host) = (failover_ai(), MemoryHost::default());
    assert_eq!(route_once(&ai, "fast", 500, &host).0, "stub_cluster");
    host.advance(std::time::Duration::from_secs(10));
    assert_eq!(route_once(&ai, "fast", 429, &host).0, "other_cluster");
    // Both cool; stub's ends 10 s before other's.
    assert_eq!(route_once(&ai, "fast", 200, &host).0, "stub_cluster");
    // A model without fallbacks is never diverted.
    assert_eq!(route_once(&ai, "big", 200, &host).0, "other_cluster");
}

#[test]
fn pooled_keys_take_turns_and_a_refused_key_sits_out() {
    let ai = ai_with(json!({
        "providers": [
            {"name": "stub", "kind": "openai_compatible", "cluster": "stub_cluster",
             "base_url": "http://stub.internal:8080/api/", "api_keys": ["key-a", "key-b", "key-c"]},
            {"name": "other", "kind": "openai_compatible", "cluster": "other_cluster", "base_url": "https://other.example"}
        ],
        "models": [{"name": "fast", "provider": "stub"}, {"name": "big", "provider": "other"}, {"name": "x", "provider": "other"}]
    }));
    let printed = format!("{ai:?}");
    assert!(!printed.contains("key-"), "{printed}");
    let host = MemoryHost::default();
    let keys: Vec<String> = (0..4).map(|_| route_once(&ai, "fast", 200, &host).1).collect();
    assert_eq!(keys, ["key-a", "key-b", "key-c", "key-a"]);
    // key-b is refused: it sits out, the others share its turns, and the provider itself stays in.
    assert_eq!(route_once(&ai, "fast", 401, &host).1, "key-b");
    let keys: Vec<String> = (0..4).map(|_| route_once(&ai, "fast", 200, &host).1).collect();
    assert_eq!(keys, ["key-c", "key-a", "key-c", "key-c"]);
    assert_eq!(host.metric("tollgate_ai_key_cooldowns.provider.stub.model.fast.consumer.alice"), 1);
    assert_eq!(host.metric("tollgate_ai_cooldowns.provider.stub.model.fast.consumer.alice"), 0);
    host.advance(std::time::Duration::from_secs(31));
    let keys: Vec<String> = (0..3).map(|_| route_once(&ai, "fast", 200, &host).1).collect();
    assert_eq!(keys, ["key-a", "key-b", "key-c"]);
}

#[test]
fn failover_and_pool_config_errors_name_their_path() {
    let bad = |extra: Value| {
        let mut config = json!({
            "providers": [
                {"name": "a", "kind": "openai", "cluster": "a", "api_key": "k"},
                {"name": "b", "kind": "openai", "cluster": "b"}
            ],
            "models": [{"name": "m", "provider": "a"}]
        });
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let raw: RawAiConfig = serde_json::from_value(config).unwrap();
        Ai::compile(raw, &ConfigPath::root().field("ai")).unwrap_err().to_string()
    };
    let models =
        |fallbacks: Value| json!({"models": [{"name": "m", "provider": "a", "fallbacks": fallbacks}]});
    assert_eq!(
        bad(models(json!([{"provider": "c"}]))),
        r#"ai.models[0].fallbacks[0].provider: no provider is named "c""#
    );
    assert_eq!(
        bad(models(json!([{"provider": "a"}]))),
        "ai.models[0].fallbacks[0].provider: is already a provider of this model"
    );
    assert!(bad(models(json!([{"provider": "b", "model": "x-*"}])))
        .starts_with("ai.models[0].fallbacks[0].model: "));
    assert_eq!(
        bad(json!({"failover": {"cooldown_seconds": 0}})),
        "ai.failover.cooldown_seconds: must be 1 to 86400"
    );
    let both = json!({"providers": [{"name": "a", "kind": "openai", "cluster": "a", "api_key": "k", "api_keys": ["j"]}]});
    let error = bad(both);
    assert_eq!(error, "ai.providers[0].api_keys: give api_key or api_keys, not both");
    let newline = json!({"providers": [{"name": "a", "kind": "openai", "cluster": "a", "api_keys": ["ok", "bad\nkey-secret"]}]});
    let error = bad(newline);
    assert!(error.starts_with("ai.providers[0].api_keys[1]: ") && !error.contains("secret"), "{error}");
}

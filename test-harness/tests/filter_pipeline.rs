//! The real `dist/tollgate.wasm` in the wasmtime host: configuration accepted or refused, requests
//! forwarded with their edits, local replies, metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failure is the point

use tollgate_harness::host::{Host, HostError, Request, Response};

const CONFIG: &str = r#"{
    "upstream_headers": {"set": {"x-tollgate": "on"}, "remove": ["x-internal"]},
    "response_headers": {"set": {"x-served-by": "tollgate"}, "remove": ["server"]},
    "local_replies": [
        {"path_prefix": "/tollgate/ping", "method": "GET", "status": 200, "body": {"pong": true}},
        {"path_prefix": "/maintenance", "status": 503, "headers": {"retry-after": "30"}, "body": "down for maintenance"}
    ]
}"#;

fn host() -> Host {
    Host::load(tollgate_harness::tollgate_wasm()).expect("load dist/tollgate.wasm")
}

fn rejection(config: &str) -> String {
    match host().plugin(config).start() {
        Err(HostError::ConfigRejected { logs }) => logs,
        Err(other) => panic!("expected the config to be rejected, got another error: {other}"),
        Ok(_) => panic!("config accepted: {config}"),
    }
}

#[test]
fn forwarded_request_carries_the_upstream_edits_and_response_edits() {
    let mut vm = host().plugin(CONFIG).start().unwrap();
    let ex = vm
        .send(
            Request::post("/v1/echo")
                .header("content-type", "application/json")
                .header("x-internal", "secret")
                .body_chunks([r#"{"hello":"#, r#""world"}"#]),
        )
        .respond_with(
            Response::status(201)
                .header("server", "upstream/1.0")
                .header("content-type", "application/json")
                .body_chunks([r#"{"ok":"#, "true}"]),
        )
        .run()
        .unwrap();

    let upstream = ex.upstream.expect("request reached the upstream");
    assert_eq!(upstream.method, "POST");
    assert_eq!(upstream.path, "/v1/echo");
    assert_eq!(upstream.header("x-tollgate"), Some("on"));
    assert_eq!(upstream.header("x-internal"), None);
    assert_eq!(upstream.header("content-type"), Some("application/json"));
    assert_eq!(upstream.body_str(), r#"{"hello":"world"}"#);

    assert_eq!(ex.downstream.status, 201);
    assert_eq!(ex.downstream.header("x-served-by"), Some("tollgate"));
    assert_eq!(ex.downstream.header("server"), None);
    assert_eq!(ex.downstream.body_str(), r#"{"ok":true}"#);
    assert!(ex.local_reply_details.is_none());
    assert_eq!(vm.metric("tollgate_requests_total"), Some(1));
    assert_eq!(vm.metric("tollgate_local_replies_total"), None);
}

#[test]
fn configured_routes_are_answered_locally_and_never_reach_the_upstream() {
    let mut vm = host().plugin(CONFIG).start().unwrap();
    let ex = vm.send(Request::get("/tollgate/ping?probe=1")).run().unwrap();
    assert!(ex.upstream.is_none(), "upstream must not see a locally answered request");
    assert_eq!(ex.downstream.status, 200);
    assert_eq!(ex.downstream.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(ex.downstream.body_str()).unwrap(),
        serde_json::json!({"pong": true})
    );
    assert_eq!(ex.downstream.header("x-served-by"), None, "response edits are for upstream responses only");

    let ex = vm.send(Request::post("/maintenance/jobs").body("{}")).run().unwrap();
    assert!(ex.upstream.is_none());
    assert_eq!(ex.downstream.status, 503);
    assert_eq!(ex.downstream.header("retry-after"), Some("30"));
    assert_eq!(ex.downstream.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(ex.downstream.body_str(), "down for maintenance");

    // The method filter: a POST to the ping path is forwarded.
    let ex = vm.send(Request::post("/tollgate/ping")).run().unwrap();
    assert!(ex.upstream.is_some());

    assert_eq!(vm.metric("tollgate_requests_total"), Some(3));
    assert_eq!(vm.metric("tollgate_local_replies_total"), Some(2));
}

#[test]
fn empty_config_passes_requests_through_untouched() {
    let mut vm = host().plugin("").start().unwrap();
    let ex = vm
        .send(Request::get("/anything").header("x-internal", "kept"))
        .respond_with(Response::status(404).body("nope"))
        .run()
        .unwrap();
    let upstream = ex.upstream.unwrap();
    assert_eq!(upstream.header("x-internal"), Some("kept"));
    assert_eq!(upstream.header("x-tollgate"), None);
    assert_eq!(ex.downstream.status, 404);
    assert_eq!(ex.downstream.body_str(), "nope");
}

#[test]
fn bad_configs_are_refused_naming_the_json_path() {
    let logs = rejection(r#"{"local_replies": [{"path_prefix": "/a", "status": 99}]}"#);
    assert!(
        logs.contains("configuration rejected: local_replies[0].status: 99 is not a final HTTP status"),
        "{logs}"
    );
    let logs = rejection(r#"{"upstream_headers": {"set": {"x-a": "ok"}, "sett": {}}}"#);
    assert!(logs.contains("configuration rejected: upstream_headers.sett: unknown field `sett`"), "{logs}");
    let logs = rejection(r#"{"response_headers": {"set": {"bad name": "v"}}}"#);
    assert!(logs.contains("response_headers.set.bad name"), "{logs}");
    let logs = rejection("{not json");
    assert!(logs.contains("configuration rejected: (root): key must be a string"), "{logs}");
    let logs = rejection("[]");
    assert!(logs.contains("(root): the configuration must be a JSON object"), "{logs}");
}

#[test]
fn workers_share_one_set_of_metrics() {
    let mut workers = host().plugin(CONFIG).workers(2).start_all().unwrap();
    for vm in workers.iter_mut() {
        let ex = vm.send(Request::get("/tollgate/ping")).run().unwrap();
        assert_eq!(ex.downstream.status, 200);
        let ex = vm.send(Request::get("/elsewhere")).respond_with(Response::status(200)).run().unwrap();
        assert_eq!(ex.downstream.status, 200);
    }
    assert_eq!(workers[0].metric("tollgate_requests_total"), Some(4));
    assert_eq!(workers[1].metric("tollgate_local_replies_total"), Some(2));
}

#[test]
fn many_requests_on_one_vm_neither_leak_state_nor_fail() {
    let mut vm = host().plugin(CONFIG).start().unwrap();
    for i in 0..200 {
        let path = if i % 2 == 0 { "/tollgate/ping".to_string() } else { format!("/item/{i}") };
        let ex = vm.send(Request::get(&path)).respond_with(Response::status(200).body("x")).run().unwrap();
        assert!(ex.complete, "stream {i} finished");
        assert_eq!(ex.downstream.status, 200);
        assert_eq!(ex.upstream.is_some(), i % 2 == 1);
    }
    assert_eq!(vm.metric("tollgate_requests_total"), Some(200));
    assert_eq!(vm.metric("tollgate_local_replies_total"), Some(100));
}

#[test]
fn every_json_example_in_the_readme_is_a_configuration_the_filter_accepts() {
    let readme = std::fs::read_to_string(tollgate_harness::repo_root().join("README.md")).unwrap();
    let examples: Vec<&str> =
        readme.split("```json\n").skip(1).filter_map(|rest| rest.split("```").next()).collect();
    assert!(examples.len() >= 2, "the README shows its config examples in ```json blocks");
    for example in examples {
        if let Err(e) = host().plugin(example).start() {
            panic!("README example refused:\n{example}\n{e}");
        }
    }
}

#[test]
fn the_vm_publishes_its_linear_memory_and_it_stays_flat_over_requests() {
    let mut vm = host().plugin(CONFIG).start().unwrap();
    let send = |vm: &mut tollgate_harness::host::Vm, n: usize| {
        for _ in 0..n {
            let ex = vm
                .send(Request::post("/v1/echo").body(r#"{"hello":"world"}"#))
                .respond_with(Response::status(200).body("ok"))
                .run()
                .unwrap();
            assert_eq!(ex.downstream.status, 200);
        }
        vm.forget_finished();
    };
    send(&mut vm, 100);
    let warm = vm.metric("tollgate_wasm_memory_bytes").expect("the memory gauge is defined");
    assert!(warm >= 65_536 && warm % 65_536 == 0, "{warm} bytes is not whole wasm pages");
    send(&mut vm, 5_000);
    assert_eq!(vm.metric("tollgate_wasm_memory_bytes"), Some(warm), "memory grew over 5,000 requests");
}

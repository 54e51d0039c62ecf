//! `tollgate-replay` as an operator runs it: exit codes, JSON on stdout, reasons on stderr.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failure is the point

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate-replay"))
        .args(["--wasm", tollgate_harness::tollgate_wasm().to_str().unwrap()])
        .args(args)
        .output()
        .expect("run tollgate-replay")
}

fn repo(path: &str) -> String {
    tollgate_harness::repo_root().join(path).display().to_string()
}

fn temp_config(json: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, json).unwrap();
    (dir, path)
}

#[test]
fn run_prints_the_forwarded_request_and_the_clients_response() {
    let out = replay(&[
        "run",
        "--config",
        &repo("envoy/tollgate.example.json"),
        "--scenario",
        &repo("test-harness/scenarios/forward.json"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "forwarded");
    let upstream_headers = report["upstream_request"]["headers"].as_array().unwrap();
    assert!(upstream_headers.contains(&serde_json::json!(["x-tollgate", "on"])));
    assert!(!upstream_headers.iter().any(|h| h[0] == "x-internal"));
    assert_eq!(report["upstream_request"]["body"], r#"{"hello":"world"}"#);
    assert_eq!(report["response"]["status"], 200);
    assert_eq!(report["response"]["body"], r#"{"ok":true}"#);
    assert_eq!(report["metrics"]["tollgate_requests_total"], 1);
}

#[test]
fn run_reports_a_local_reply_without_an_upstream_request() {
    let out = replay(&[
        "run",
        "--config",
        &repo("envoy/tollgate.example.json"),
        "--scenario",
        &repo("test-harness/scenarios/ping.json"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "local_reply");
    assert_eq!(report["upstream_request"], Value::Null);
    assert_eq!(report["response"]["status"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(report["response"]["body"].as_str().unwrap()).unwrap()["pong"],
        true
    );
    assert_eq!(report["metrics"]["tollgate_local_replies_total"], 1);
}

#[test]
fn a_rejected_config_exits_2_with_the_json_path() {
    let (_dir, config) = temp_config(r#"{"local_replies": [{"path_prefix": "x", "status": 200}]}"#);
    let config = config.to_str().unwrap();
    for args in [
        vec!["check", config],
        vec!["run", "--config", config, "--scenario", &repo("test-harness/scenarios/ping.json")],
    ] {
        let out = replay(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("configuration rejected: local_replies[0].path_prefix: must start with '/'"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty() || args[0] == "check");
    }
}

#[test]
fn check_reports_each_config_and_fails_if_any_is_rejected() {
    let (_dir, bad) = temp_config("{\"upstream_headers\": 5}");
    let out = replay(&["check", &repo("envoy/tollgate.example.json"), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: "));
    assert!(String::from_utf8_lossy(&out.stderr).contains("upstream_headers: invalid type: integer `5`"));
}

#[test]
fn other_failures_exit_1_with_a_clear_message() {
    let out = replay(&["check", "/nonexistent/config.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/config.json"));

    let out = Command::new(env!("CARGO_BIN_EXE_tollgate-replay"))
        .args(["--wasm", "/nonexistent/tollgate.wasm", "check", &repo("envoy/tollgate.example.json")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run ./build.sh first"));
}

#[test]
fn run_says_why_a_request_was_refused_with_the_decision_trace() {
    let config = r#"{"auth": {"consumers": [{"name": "alice", "api_keys": [
        {"id": "k1", "sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}]}]}}"#;
    let (_dir, config_path) = temp_config(config);
    let out = replay(&[
        "run",
        "--config",
        config_path.to_str().unwrap(),
        "--scenario",
        &repo("test-harness/scenarios/forward.json"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "local_reply");
    assert_eq!(report["response"]["status"], 401);
    // The configuration does not turn tracing on; the replay does, to say why.
    assert_eq!(report["trace"], "auth:deny missing_credentials");
    let headers = report["response"]["headers"].as_array().unwrap();
    assert!(
        headers.contains(&serde_json::json!(["x-tollgate-reason", "missing_credentials"])),
        "{headers:?}"
    );
}

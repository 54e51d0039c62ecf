//! The chain's own basics: local replies before auth, header edits, and requests no plugin claims.

use tollgate_core::testing::MemoryHost;

use super::*;

const CONFIG: &str = r#"{
    "upstream_headers": {"set": {"x-tollgate": "on"}, "remove": ["x-internal"]},
    "response_headers": {"set": {"x-served-by": "tollgate"}},
    "local_replies": [{"path_prefix": "/tollgate/ping", "method": "GET", "status": 200, "body": {"pong": true}}]
}"#;

fn request(method: &str, path: &str) -> RequestHead {
    RequestHead::from_pairs([(":method", method), (":path", path), ("x-internal", "secret")])
}

#[test]
fn forwarded_requests_get_upstream_and_response_edits() {
    let pipeline = Pipeline::from_json(CONFIG.as_bytes()).unwrap();
    let host = MemoryHost::default();
    let mut stream = pipeline.stream();
    let Verdict::Continue(edits) =
        pipeline.on_request_headers(&mut stream, &request("POST", "/v1/x"), host.ports())
    else {
        panic!("expected continue");
    };
    let mut headers = request("POST", "/v1/x").headers;
    edits.apply_to(&mut headers);
    assert_eq!(headers.get("x-tollgate"), Some("on"));
    assert_eq!(headers.get("x-internal"), None);
    assert_eq!(pipeline.on_request_body(&mut stream, b"{}", true, host.ports()), BodyVerdict::pass());
    let Verdict::Continue(edits) =
        pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports())
    else {
        panic!("expected continue");
    };
    assert_eq!(edits.set, [("x-served-by".to_string(), "tollgate".to_string())]);
    assert_eq!(host.metric(REQUESTS_TOTAL), 1);
    assert_eq!(host.metric(LOCAL_REPLIES_TOTAL), 0);
}

#[test]
fn local_replies_answer_and_skip_response_edits() {
    let pipeline = Pipeline::from_json(CONFIG.as_bytes()).unwrap();
    let host = MemoryHost::default();
    let mut stream = pipeline.stream();
    let Verdict::Respond(reply) =
        pipeline.on_request_headers(&mut stream, &request("GET", "/tollgate/ping"), host.ports())
    else {
        panic!("expected a local reply");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, br#"{"pong":true}"#);
    let verdict = pipeline.on_response_headers(&mut stream, &ResponseHead::default(), host.ports());
    assert_eq!(verdict, Verdict::Continue(Default::default()));
    assert_eq!(host.metric(LOCAL_REPLIES_TOTAL), 1);
}

#[test]
fn an_oversized_head_is_refused_before_local_replies_and_auth_and_counted() {
    let config = r#"{"limits": {"max_request_header_bytes": 200},
        "local_replies": [{"path_prefix": "/tollgate/ping", "status": 200}],
        "auth": {"consumers": []}}"#;
    let pipeline = Pipeline::from_json(config.as_bytes()).unwrap();
    let host = MemoryHost::default();
    let cookie = "c".repeat(200);
    let head =
        RequestHead::from_pairs([(":method", "GET"), (":path", "/tollgate/ping"), ("cookie", &cookie)]);
    let mut stream = pipeline.stream();
    let Verdict::Respond(reply) = pipeline.on_request_headers(&mut stream, &head, host.ports()) else {
        panic!("expected a refusal");
    };
    assert_eq!((reply.status, reply.reason()), (431, Some("request_headers_too_large")));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(host.metric(&denial_metric("request_headers_too_large", None, None)), 1);
    // Within the bound, the same request is the local reply's.
    let small = RequestHead::from_pairs([(":method", "GET"), (":path", "/tollgate/ping")]);
    let verdict = pipeline.on_request_headers(&mut pipeline.stream(), &small, host.ports());
    assert!(matches!(verdict, Verdict::Respond(r) if r.status == 200));
}

//! A remote JWKS through the real `dist/tollgate.wasm` on two workers: fetched once with `http_call` and
//! shared through shared data, fetched in the background by the root tick, served stale while the JWKS
//! server is down (until `max_stale_s`), and refreshed once — not once per token — for unknown key ids.

// Test helpers: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "auth_support/idp.rs"]
mod idp;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tollgate_harness::host::{Exchange, Host, Reply, Request, Response, Vm};

use idp::{assert_refused, claims, es256, now_secs, AUDIENCE, ISSUER};

const CLUSTER: &str = "idp";
const AUTHORITY: &str = "idp.example";
const JWKS_PATH: &str = "/.well-known/jwks.json";
const REFRESH_S: u64 = 60;
const MIN_REFRESH_S: u64 = 10;
const MAX_STALE_S: u64 = 120;

fn config() -> String {
    json!({"auth": {"jwt_providers": [{
        "name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
        "keys": {"remote": {
            "cluster": CLUSTER, "authority": AUTHORITY, "path": JWKS_PATH, "timeout_ms": 1000,
            "refresh_interval_s": REFRESH_S, "min_refresh_interval_s": MIN_REFRESH_S,
            "max_stale_s": MAX_STALE_S
        }},
        "claims_to_headers": {"email": "x-user-email"}
    }]}})
    .to_string()
}

/// How the scripted JWKS endpoint answers right now.
#[derive(Clone)]
enum Mode {
    Serve(Value),
    Fail(Reply),
    /// Leave the call pending for the test to answer by token.
    Manual,
}

/// The identity provider's JWKS endpoint, switchable mid-test.
#[derive(Clone)]
struct JwksServer(Arc<Mutex<Mode>>);

impl JwksServer {
    fn install(host: &Host, mode: Mode) -> Self {
        let server = JwksServer(Arc::new(Mutex::new(mode)));
        let state = Arc::clone(&server.0);
        host.clusters([CLUSTER]);
        host.respond_to_calls(move |call| {
            if call.cluster != CLUSTER {
                return None;
            }
            match state.lock().unwrap().clone() {
                Mode::Serve(jwks) => Some(jwks_response(&jwks).into()),
                Mode::Fail(reply) => Some(reply),
                Mode::Manual => None,
            }
        });
        server
    }

    fn set(&self, mode: Mode) {
        *self.0.lock().unwrap() = mode;
    }
}

fn jwks_response(jwks: &Value) -> Response {
    Response::status(200).header("content-type", "application/json").body(jwks.to_string())
}

fn key1() -> Value {
    idp::jwks(&[es256(1).jwk("k1")])
}

/// A token signed with key `seed` under `kid`. `n` makes each token distinct, so it cannot come from the
/// per-worker token cache and really needs the keys.
fn token(host: &Host, seed: u8, kid: &str, n: u64) -> String {
    let mut claims = claims("alice", now_secs(host));
    claims["jti"] = json!(n);
    es256(seed).sign(Some(kid), &claims)
}

fn request(token: &str) -> Request {
    Request::get("/v1/models").header("authorization", &format!("Bearer {token}"))
}

fn send(vm: &mut Vm, token: &str) -> Exchange {
    vm.send(request(token)).respond_with(Response::status(200).body("ok")).run().unwrap()
}

fn assert_admitted(ex: &Exchange) {
    assert_eq!(ex.downstream.status, 200, "{}", ex.downstream.body_str());
    let up = ex.upstream.as_ref().expect("forwarded");
    assert_eq!(up.header("x-tollgate-consumer"), Some("alice"));
    assert_eq!(up.header("x-user-email"), Some("alice@example.com"));
    assert_eq!(up.header("authorization"), None);
}

fn jwks_calls(host: &Host) -> usize {
    host.outbound_calls().iter().filter(|c| c.cluster == CLUSTER).count()
}

#[test]
fn the_first_request_waits_for_the_jwks_and_the_other_worker_reuses_the_shared_copy() {
    let host = idp::host();
    JwksServer::install(&host, Mode::Manual);
    let mut workers = host.plugin(config()).workers(2).start_all().unwrap();
    let token = token(&host, 1, "k1", 0);

    let (first, rest) = workers.split_first_mut().unwrap();
    let mut s = first.stream(request(&token)).unwrap();
    s.send_request().unwrap();
    assert!(s.request_paused(), "the request waits for the keys");
    assert!(!s.reached_upstream());
    let calls = host.outbound_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!((call.cluster.as_str(), call.vm, call.context_id), (CLUSTER, 0, s.context_id()));
    assert_eq!(call.header(":method"), Some("GET"));
    assert_eq!(call.header(":path"), Some(JWKS_PATH));
    assert_eq!(call.header(":authority"), Some(AUTHORITY));
    assert_eq!(call.header("accept"), Some("application/json"));
    assert_eq!(call.timeout, Some(Duration::from_secs(1)));

    s.complete_http_call(call.token, jwks_response(&key1())).unwrap();
    let ex = s.finish(Response::status(200).body("ok")).unwrap();
    assert_admitted(&ex);
    assert_eq!(ex.downstream.body_str(), "ok");

    // Worker 1 has its own token cache but reads the keys worker 0 stored: no second fetch.
    let ex = send(&mut rest[0], &token);
    assert_admitted(&ex);
    assert!(ex.calls.is_empty());
    assert_eq!(jwks_calls(&host), 1);
    assert_eq!(host.metric("tollgate_jwks_fetched_total"), Some(1));
    assert_eq!(host.metric("tollgate_auth_allowed_total"), Some(2));
}

#[test]
fn the_root_tick_fetches_the_jwks_before_any_request_and_refreshes_it_once_per_interval() {
    let host = idp::host();
    JwksServer::install(&host, Mode::Serve(key1()));
    let mut workers = host.plugin(config()).workers(2).start_all().unwrap();
    assert_eq!(jwks_calls(&host), 0, "nothing is fetched during configuration");

    workers[0].advance(Duration::from_secs(1)).unwrap();
    workers[1].poll().unwrap();
    let calls = host.outbound_calls();
    assert_eq!(calls.len(), 1, "one fetch for both workers");
    assert_eq!(calls[0].context_id, workers[0].root_context_id(), "made by the root context");
    assert_eq!(calls[0].header(":path"), Some(JWKS_PATH));

    for (n, vm) in workers.iter_mut().enumerate() {
        let ex = send(vm, &token(&host, 1, "k1", n as u64));
        assert_admitted(&ex);
        assert!(ex.calls.is_empty(), "worker {n} needed no call of its own");
    }

    // Once the copy is `refresh_interval_s` old, one worker refreshes it for both.
    workers[0].advance(Duration::from_secs(REFRESH_S)).unwrap();
    workers[1].poll().unwrap();
    assert_eq!(jwks_calls(&host), 2);
    assert_eq!(host.metric("tollgate_jwks_fetched_total"), Some(2));
}

/// After one good fetch the JWKS endpoint fails (`failure`): refreshes are retried in the background and
/// tokens keep verifying with the stale copy until `refresh_interval_s + max_stale_s`; then they get a 503
/// `jwt_keys_unavailable`; once the endpoint recovers, tokens pass again.
fn stale_keys_are_served_while_the_jwks_server_fails(failure: Reply) {
    let host = idp::host();
    let server = JwksServer::install(&host, Mode::Serve(key1()));
    let mut vm = host.plugin(config()).start().unwrap();
    let mut n = 0;
    let mut fresh_token = |host: &Host| {
        n += 1;
        token(host, 1, "k1", n)
    };
    assert_admitted(&send(&mut vm, &fresh_token(&host)));
    assert_eq!(jwks_calls(&host), 1);

    // Virtual times below are seconds since the good fetch at t=0.
    server.set(Mode::Fail(failure));
    vm.advance(Duration::from_secs(REFRESH_S + 1)).unwrap(); // t=61
    assert_eq!(jwks_calls(&host), 2, "a refresh was attempted once it was due");
    let ex = send(&mut vm, &fresh_token(&host));
    assert_admitted(&ex);
    assert!(ex.calls.is_empty(), "the stale copy is used without waiting for the server");

    // Just before the stale copy runs out at t=REFRESH_S+MAX_STALE_S=180.
    vm.advance(Duration::from_secs(MAX_STALE_S - 2)).unwrap(); // t=179
                                                               // The first fetch, then one retry per `min_refresh_interval_s` from t=60 to t=170, not one per tick.
    assert_eq!(jwks_calls(&host), 1 + 12);
    assert_admitted(&send(&mut vm, &fresh_token(&host)));
    assert!(host.metric("tollgate_jwks_fetch_failures_total").unwrap_or(0) >= 1);

    vm.advance(Duration::from_secs(1)).unwrap(); // t=180
    let ex = send(&mut vm, &fresh_token(&host));
    assert_refused(&ex, 503, "jwt_keys_unavailable");
    assert_eq!(idp::error(&ex)["type"], "api_error");
    assert_eq!(ex.downstream.header("www-authenticate"), None, "not the client's fault: no challenge");
    assert_eq!(vm.metric("tollgate_auth_unavailable_total"), Some(1));

    server.set(Mode::Serve(key1()));
    vm.advance(Duration::from_secs(MIN_REFRESH_S)).unwrap(); // t=190: the next retry succeeds
    assert_admitted(&send(&mut vm, &fresh_token(&host)));
    assert_eq!(host.metric("tollgate_jwks_fetched_total"), Some(2));
}

#[test]
fn stale_keys_are_served_while_the_jwks_server_answers_500() {
    stale_keys_are_served_while_the_jwks_server_fails(Response::status(500).body("oops").into());
}

#[test]
fn stale_keys_are_served_while_the_jwks_server_times_out() {
    stale_keys_are_served_while_the_jwks_server_fails(Reply::Never);
}

#[test]
fn a_burst_of_unknown_key_ids_triggers_one_refresh_and_a_rotated_key_is_picked_up() {
    let host = idp::host();
    let server = JwksServer::install(&host, Mode::Serve(key1()));
    let mut workers = host.plugin(config()).workers(2).start_all().unwrap();
    assert_admitted(&send(&mut workers[0], &token(&host, 1, "k1", 0)));
    assert_eq!(jwks_calls(&host), 1);
    workers[0].advance(Duration::from_secs(MIN_REFRESH_S + 5)).unwrap();
    assert_eq!(jwks_calls(&host), 1, "the copy is fresh: the tick fetches nothing");

    // 20 tokens naming a key the JWKS does not have, on both workers, while the one refresh they caused
    // is still in flight.
    server.set(Mode::Manual);
    let (first, rest) = workers.split_first_mut().unwrap();
    let second = &mut rest[0];
    let mut s = first.stream(request(&token(&host, 2, "k-unknown", 0))).unwrap();
    s.send_request().unwrap();
    assert!(s.request_paused(), "the first unknown kid waits for a refresh");
    let refresh = host.outbound_calls().last().unwrap().clone();
    assert_eq!(refresh.cluster, CLUSTER);
    for n in 1..20 {
        let vm = if n % 2 == 0 { s.vm() } else { &mut *second };
        let ex = send(vm, &token(&host, 2, "k-unknown", n));
        assert_refused(&ex, 401, "jwt_unknown_key");
        assert!(ex.calls.is_empty());
    }
    assert_eq!(jwks_calls(&host), 2, "one refresh for 20 unknown kids");
    // The refresh brings nothing new, so the first one is refused too, without fetching again.
    s.complete_http_call(refresh.token, jwks_response(&key1())).unwrap();
    let ex = s.exchange();
    assert_refused(&ex, 401, "jwt_unknown_key");
    assert_eq!(jwks_calls(&host), 2);

    // The issuer rotates in k2; within min_refresh_interval_s a k2 token is still refused...
    server.set(Mode::Serve(idp::jwks(&[es256(1).jwk("k1"), es256(2).jwk("k2")])));
    assert_refused(&send(second, &token(&host, 2, "k2", 100)), 401, "jwt_unknown_key");
    // ...and once the interval has passed, one k2 token causes the refresh that admits it, everywhere.
    second.advance(Duration::from_secs(MIN_REFRESH_S)).unwrap();
    let ex = send(second, &token(&host, 2, "k2", 101));
    assert_admitted(&ex);
    assert_eq!(ex.calls.len(), 1, "this request waited for the refresh");
    assert_admitted(&send(first, &token(&host, 2, "k2", 102)));
    assert_admitted(&send(first, &token(&host, 1, "k1", 103)));
    assert_eq!(jwks_calls(&host), 3);
    assert_eq!(host.metric("tollgate_auth_invalid_total"), Some(21));
}

#[test]
fn a_request_waiting_for_keys_that_never_come_gets_a_503_at_the_call_timeout() {
    let host = idp::host();
    JwksServer::install(&host, Mode::Fail(Reply::Never));
    let mut vm = host.plugin(config()).start().unwrap();
    let before = vm.now();
    let ex = send(&mut vm, &token(&host, 1, "k1", 0));
    assert_refused(&ex, 503, "jwt_keys_unavailable");
    assert_eq!(ex.calls.len(), 1, "one fetch attempt, not a retry loop");
    assert_eq!(vm.now().duration_since(before).unwrap(), Duration::from_secs(1), "timeout_ms");
    assert_eq!(host.metric("tollgate_jwks_fetch_failures_total"), Some(1));
}

#[test]
fn a_request_body_sent_while_the_keys_are_fetched_reaches_the_upstream_whole() {
    let host = idp::host();
    JwksServer::install(&host, Mode::Manual);
    let mut vm = host.plugin(config()).start().unwrap();
    let token = token(&host, 1, "k1", 0);
    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let post = Request::post("/v1/chat/completions")
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body_chunks([&body[..10], &body[10..]]);
    let mut s = vm.stream(post).unwrap();
    s.send_request().unwrap();
    assert!(s.request_paused());
    let call = host.outbound_calls().pop().unwrap();
    s.complete_http_call(call.token, jwks_response(&key1())).unwrap();
    let ex = s.finish(Response::status(200).body("ok")).unwrap();
    assert_admitted(&ex);
    let up = ex.upstream.unwrap();
    assert_eq!((up.method.as_str(), up.body_str()), ("POST", body));
}

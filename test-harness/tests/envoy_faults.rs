//! End to end: what a client of a real Envoy (`--concurrency 2`) running `dist/tollgate.wasm` sees while
//! a dependency fails, and that the first request after the fault is gone is served normally. The faults:
//! the remote JWKS endpoint down (connection refused) or slower than its `timeout_ms`, before any keys were
//! fetched and after; the rate limit service slower than its `timeout_ms`, or cut off, then back; and AI
//! providers (OpenAI and Anthropic, for an OpenAI-format client) answering garbage, truncated JSON or an
//! HTML 502 page, resetting the connection before or during the response, or stalling mid-stream. After
//! each, Envoy's wasm stats and log must show no VM failure, rebuild or reload (`faults_support/health.rs`).
//! Needs Envoy, the built module and `redis-server`: `./build.sh test` provides them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

#[path = "faults_support/ai.rs"]
mod ai;
#[path = "faults_support/client.rs"]
mod client;
#[path = "faults_support/health.rs"]
mod health;
#[path = "auth_support/idp.rs"]
mod idp;
#[path = "faults_support/jwks.rs"]
mod jwks;
#[path = "faults_support/listener.rs"]
mod listener;
#[path = "faults_support/provider.rs"]
mod provider;
#[path = "faults_support/relay.rs"]
mod relay;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use tollgate_harness::envoy::{Answer, Envoy};
use tollgate_harness::rls::{RateLimitService, Redis};
use tollgate_harness::upstream::EchoUpstream;

use health::VmBaseline;
use idp::{claims, es256, SigningKey, AUDIENCE, ISSUER};
use jwks::{JwksServer, JWKS_PATH};
use provider::Fault;
use relay::{Mode, Relay};

/// Every remote JWKS and the rate limit service get this long to answer.
const CALL_TIMEOUT_MS: u64 = 300;
/// How late a slow dependency answers: well past the timeout, so a client held for it would show.
const SLOW: Duration = Duration::from_millis(5_000);
/// At least this long for a request that waited for a call that timed out (Envoy's timer may fire a
/// millisecond early; a refusal without a call takes one or two).
const WAITED_FOR_TIMEOUT: Duration = Duration::from_millis(CALL_TIMEOUT_MS * 4 / 5);
/// The most a request may take while a dependency is slow or down: the timeout and ample room for a loaded
/// CI machine, still well short of `SLOW`. (A bound on behaviour, not a performance goal.)
const BOUNDED: Duration = Duration::from_millis(3_000);
/// How long a recovered dependency may take to be used again: the JWKS refetch interval (1 s) and a tick.
const RECOVERY: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(5);
/// The idle timeout of the route a stalling provider is reached through.
const STALL_IDLE: Duration = Duration::from_secs(1);

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token for `sub` from `key` (kid `kid`); each `sub` gives a token no worker has verified (and cached) yet.
fn token(key: &SigningKey, kid: &str, sub: &str) -> String {
    key.sign(Some(kid), &claims(sub, now_secs()))
}

/// A GET with a bearer token, and how long it took.
fn get(envoy: &Envoy, path: &str, token: &str) -> Result<(Answer, Duration)> {
    let started = Instant::now();
    let answer = envoy.get(path, &[("authorization", &bearer(token))])?;
    Ok((answer, started.elapsed()))
}

/// A refusal of Tollgate's own, as documented: status, OpenAI-shaped body with the code, reason header.
fn refused(answer: &Answer, status: u16, code: &str) -> Result<()> {
    ensure!(answer.status == status, "wanted {status} {code}, got {answer:?}");
    ensure!(answer.openai_error()?.1 == code, "wanted code {code}: {answer:?}");
    ensure!(answer.header("x-tollgate-reason") == Some(code), "{answer:?}");
    Ok(())
}

/// Asks until a request gets a 200, within `within`; every other answer must pass `meanwhile`.
fn until_ok(
    within: Duration,
    mut ask: impl FnMut() -> Result<Answer>,
    meanwhile: impl Fn(&Answer) -> Result<()>,
) -> Result<Answer> {
    let deadline = Instant::now() + within;
    loop {
        let answer = ask()?;
        if answer.status == 200 {
            return Ok(answer);
        }
        meanwhile(&answer)?;
        ensure!(Instant::now() < deadline, "no 200 within {within:?}; last answer {answer:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn remote_provider(name: &str, cluster: &str, refresh_interval_s: u64) -> Value {
    json!({"name": name, "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
           "keys": {"remote": {"cluster": cluster, "authority": "idp.test", "path": JWKS_PATH,
                               "timeout_ms": CALL_TIMEOUT_MS, "refresh_interval_s": refresh_interval_s,
                               "min_refresh_interval_s": 1}}})
}

#[test]
fn with_no_keys_ever_fetched_a_down_or_slow_jwks_is_a_prompt_503_until_it_answers() -> Result<()> {
    let signer = es256(21);
    let keys = idp::jwks(&[signer.jwk("k1")]);
    let mut down = JwksServer::down_at_a_free_address(keys.clone())?;
    let mut slow = JwksServer::down_at_a_free_address(keys)?;
    slow.set_delay(SLOW);
    slow.up()?;
    let upstream = EchoUpstream::start()?;
    let config = json!({"auth": {
        "jwt_providers": [remote_provider("down", "jwks_down", 600), remote_provider("slow", "jwks_slow", 600)],
        "routes": [{"path_prefix": "/down", "require": "jwt", "jwt_providers": ["down"]},
                   {"path_prefix": "/slow", "require": "jwt", "jwt_providers": ["slow"]}]
    }});
    let envoy = Envoy::builder(config.to_string())
        .upstream(upstream.addr())
        .cluster("jwks_down", down.addr())
        .cluster("jwks_slow", slow.addr())
        .start()?;
    let vms = VmBaseline::take(&envoy)?;

    let alice = token(&signer, "k1", "alice");
    for path in ["/down/orders", "/slow/orders"] {
        // The root timer tries a fetch every second; a request meanwhile is refused at once, not held.
        for attempt in 0..3 {
            let (answer, took) = get(&envoy, path, &alice)?;
            refused(&answer, 503, "jwt_keys_unavailable")
                .map_err(|e| e.context(format!("{path} #{attempt}")))?;
            ensure!(answer.header("www-authenticate").is_none(), "{answer:?}");
            ensure!(
                took < BOUNDED,
                "{path} #{attempt} took {took:?} with the JWKS {CALL_TIMEOUT_MS} ms away"
            );
            std::thread::sleep(Duration::from_millis(400));
        }
    }
    ensure!(upstream.received().is_empty(), "a request without keys went upstream");
    ensure!(slow.fetches() >= 1, "the slow JWKS was never asked");
    vms.check(&envoy, "JWKS fetches that failed")?;

    down.up()?;
    slow.set_delay(Duration::ZERO);
    for (path, server) in [("/down/orders", &down), ("/slow/orders", &slow)] {
        let still_unavailable = |a: &Answer| refused(a, 503, "jwt_keys_unavailable");
        let answer = until_ok(RECOVERY, || Ok(get(&envoy, path, &alice)?.0), still_unavailable)?;
        ensure!(answer.json()?["path"] == path, "{answer:?}");
        ensure!(server.fetches() >= 1, "{path}: keys came from nowhere");
    }
    let consumers: Vec<_> =
        upstream.received().iter().map(|r| r.header("x-tollgate-consumer").map(str::to_owned)).collect();
    ensure!(consumers == [Some("alice".to_owned()), Some("alice".to_owned())], "{consumers:?}");
    vms.check(&envoy, "the JWKS servers came up")
}

#[test]
fn keys_fetched_before_keep_verifying_while_the_jwks_is_slow_or_down() -> Result<()> {
    let (signer, rotated) = (es256(22), es256(23));
    let mut server = JwksServer::down_at_a_free_address(idp::jwks(&[signer.jwk("k1")]))?;
    server.up()?;
    let upstream = EchoUpstream::start()?;
    // Two providers on the same JWKS: `stale` is due for a refresh every second, so its refreshes fail while
    // the server is unwell and it verifies with the last good copy; `fresh` is not due, so only a token with
    // a kid it lacks makes it fetch, on the request's own path.
    let config = json!({"auth": {
        "jwt_providers": [remote_provider("stale", "jwks", 1), remote_provider("fresh", "jwks", 600)],
        "routes": [{"path_prefix": "/stale", "require": "jwt", "jwt_providers": ["stale"]},
                   {"path_prefix": "/fresh", "require": "jwt", "jwt_providers": ["fresh"]}]
    }});
    let envoy = Envoy::builder(config.to_string())
        .upstream(upstream.addr())
        .cluster("jwks", server.addr())
        .start()?;
    for path in ["/stale/a", "/fresh/a"] {
        let first = token(&signer, "k1", "first");
        until_ok(RECOVERY, || Ok(get(&envoy, path, &first)?.0), |a| refused(a, 503, "jwt_keys_unavailable"))?;
    }
    let vms = VmBaseline::take(&envoy)?;
    let failures = "wasmcustom.tollgate_jwks_fetch_failures_total";

    let mut failed = 0;
    for fault in ["slow", "down"] {
        match fault {
            "slow" => server.set_delay(SLOW),
            _ => server.down(),
        }
        // A refresh has failed: `stale` has only its old copy.
        failed = envoy.wait_for_counter(failures, failed + 1, WAIT)?;
        ensure!(failed >= 1, "no refresh failed while the JWKS was {fault}");
        for path in ["/stale/b", "/fresh/b"] {
            let (answer, took) = get(&envoy, path, &token(&signer, "k1", &format!("{fault}-{path}")))?;
            ensure!(answer.status == 200, "{fault} {path}: a valid token was refused: {answer:?}");
            ensure!(took < BOUNDED, "{fault} {path}: a token with known keys took {took:?}");
        }
        // A kid `fresh` lacks: the request waits for one refetch, which fails within the timeout. (A provider
        // fetches at most once a second, so the last fetch is let pass that long first.)
        std::thread::sleep(Duration::from_secs(1));
        let (unknown, took) = get(&envoy, "/fresh/c", &token(&rotated, "k2", &format!("rotated-{fault}")))?;
        refused(&unknown, 401, "jwt_unknown_key").map_err(|e| e.context(fault))?;
        ensure!(took < BOUNDED, "{fault}: an unknown kid took {took:?}");
        if fault == "slow" {
            ensure!(took >= WAITED_FOR_TIMEOUT, "the unknown kid did not wait for a refetch: {took:?}");
        }
        vms.check(&envoy, &format!("the JWKS was {fault}"))?;
    }

    server.set_jwks(idp::jwks(&[signer.jwk("k1"), rotated.jwk("k2")]));
    server.set_delay(Duration::ZERO);
    server.up()?;
    // `stale` picks the rotated key up on its next refresh, `fresh` on the next request that may fetch.
    for path in ["/stale/d", "/fresh/d"] {
        let after = token(&rotated, "k2", "after");
        until_ok(RECOVERY, || Ok(get(&envoy, path, &after)?.0), |a| refused(a, 401, "jwt_unknown_key"))?;
        let (old_key, _) = get(&envoy, path, &token(&signer, "k1", "old-key"))?;
        ensure!(old_key.status == 200, "{path}: {old_key:?}");
    }
    vms.check(&envoy, "the JWKS came back")
}

fn rls_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tollgate-rls"))
}

fn rule_counter(envoy: &Envoy, rule: &str, event: &str) -> u64 {
    envoy.counter(&format!("wasmcustom.tollgate_ratelimit.rule.{rule}.{event}")).unwrap().unwrap_or(0)
}

#[test]
fn a_slow_or_cut_off_rate_limit_service_fails_open_or_closed_and_limits_again_once_back() -> Result<()> {
    let redis = Redis::start()?;
    let limits = json!({"limits": [
        {"domain": "tollgate", "rule": "lenient", "max": 2, "seconds": 600, "by": ["x-team"]},
        {"domain": "tollgate", "rule": "strict", "max": 2, "seconds": 600, "by": ["x-team"]}
    ]});
    let rls = RateLimitService::start(rls_binary(), &redis.url(), &limits)?;
    let relay = Relay::start(rls.addr())?;
    let upstream = EchoUpstream::start()?;
    let config = json!({"ratelimit": {
        "service": {"cluster": "ratelimit", "domain": "tollgate", "timeout_ms": CALL_TIMEOUT_MS},
        "rules": [
            {"name": "lenient", "mode": "global", "routes": ["/open"], "key": [{"header": "x-team"}], "failure_mode": "open"},
            {"name": "strict", "mode": "global", "routes": ["/closed"], "key": [{"header": "x-team"}], "failure_mode": "closed"}
        ]
    }});
    let envoy = Envoy::builder(config.to_string())
        .upstream(upstream.addr())
        .grpc_cluster("ratelimit", relay.addr())
        .start()?;
    let vms = VmBaseline::take(&envoy)?;
    let ask = |path: &str, team: &str| -> Result<(Answer, Duration)> {
        let started = Instant::now();
        let answer = envoy.get(path, &[("x-team", team)])?;
        Ok((answer, started.elapsed()))
    };
    // Each team has its own counter: two requests are admitted, the third is refused.
    let enforced = |path: &str, team: &str| -> Result<()> {
        for n in 0..2 {
            let (answer, _) = ask(path, team)?;
            ensure!(answer.status == 200, "{path} {team} #{n}: {answer:?}");
        }
        let (third, _) = ask(path, team)?;
        refused(&third, 429, "rate_limited").map_err(|e| e.context(format!("{path} {team}")))
    };
    enforced("/closed", "healthy")?;

    let mut round = 0;
    for (fault, mode) in [("slow", Mode::Slow(SLOW)), ("cut off", Mode::Down)] {
        relay.set_mode(mode);
        round += 1;
        let (open, took) = ask("/open", &format!("{fault}-team"))?;
        ensure!(open.status == 200, "{fault}: the fail-open rule refused: {open:?}");
        ensure!(took < BOUNDED, "{fault}: fail-open took {took:?}");
        let (closed, took) = ask("/closed", &format!("{fault}-team"))?;
        refused(&closed, 503, "rate_limit_service_unavailable").map_err(|e| e.context(fault))?;
        ensure!(closed.retry_after()? == 1, "{closed:?}");
        ensure!(closed.body.contains("strict"), "the message names the rule: {}", closed.body);
        ensure!(took < BOUNDED, "{fault}: fail-closed took {took:?}");
        if fault == "slow" {
            ensure!(took >= WAITED_FOR_TIMEOUT, "fail-closed did not wait for the service: {took:?}");
        }
        ensure!(rule_counter(&envoy, "lenient", "failed_open") == round, "{fault}");
        ensure!(rule_counter(&envoy, "strict", "failed_closed") == round, "{fault}");

        relay.set_mode(Mode::Pass);
        if let Mode::Slow(hold) = mode {
            // Answers held back while slow still arrive late, and ahead of newer ones on the same connection.
            std::thread::sleep(hold);
        }
        enforced("/closed", &format!("after-{fault}"))?;
        enforced("/open", &format!("after-{fault}"))?;
        vms.check(&envoy, &format!("the rate limit service was {fault}"))?;
    }
    // Two before the faults; in each round the fail-open request and four of the six after it.
    let paths: Vec<String> = upstream.received().iter().map(|r| r.path.clone()).collect();
    ensure!(paths.len() == 2 + 2 * (1 + 4), "only admitted requests went upstream: {paths:?}");
    Ok(())
}

#[test]
fn provider_garbage_and_resets_become_openai_errors_and_the_next_request_completes() -> Result<()> {
    let gateway = ai::Gateway::start(None)?;
    let vms = VmBaseline::take(&gateway.envoy)?;
    let addr = gateway.envoy.listener_addr();
    for model in ai::MODELS {
        for fault in [Fault::Garbage, Fault::TruncatedJson] {
            let answer = gateway.chat(addr, model, fault, false)?;
            ai::openai_error(&answer, 502, "bad_upstream_response", Some("bad_upstream_response"))?;
            gateway.chat_completes(model)?;
        }
        // A stream request answered with a whole (broken) body instead of events.
        let answer = gateway.chat(addr, model, Fault::Garbage, true)?;
        ai::openai_error(&answer, 502, "bad_upstream_response", Some("bad_upstream_response"))?;
        gateway.stream_completes(model)?;
        // The HTML page, and Envoy's own 503 for the reset, are the provider's failure. The page has no code;
        // Envoy's reply (shaped by the listener's local_reply_config) has one, which the OpenAI adapter reads
        // from `error.code` and the Anthropic adapter from `error.type`, as each provider writes its errors.
        let envoys = if model.starts_with("claude") { "upstream_error" } else { "upstream_failure" };
        for (fault, code) in [(Fault::Html502, None), (Fault::ResetBeforeHeaders, Some(envoys))] {
            let answer = gateway.chat(addr, model, fault, false)?;
            ai::openai_error(&answer, 502, "provider_error", code)?;
            gateway.chat_completes(model)?;
            let answer = gateway.chat(addr, model, fault, true)?;
            ai::openai_error(&answer, 502, "provider_error", code)?;
            gateway.stream_completes(model)?;
        }
        // A stream cut after its 200 left: the client has the events so far, then Envoy's reset.
        let cut = gateway.chat(addr, model, Fault::ResetMidBody, true)?;
        ai::cut_stream(&cut, Fault::ResetMidBody)?;
        gateway.stream_completes(model)?;
        vms.check(&gateway.envoy, &format!("{model}'s garbage and resets"))?;
    }
    Ok(())
}

/// A provider that resets (or stalls past the route's idle timeout) after the head of a plain JSON answer:
/// the filter holds that head until the body is in (`AwaitBody`), so the router's local reply goes straight
/// to the codec (Envoy's `sendDirectLocalReply`), past the filter, which is never called again before
/// `on_log`. Envoy's reply would be plain text ("upstream connect error ...", 502; "stream timeout", 504);
/// the HCM `local_reply_config` mapper on the upstream-failure response flags, in the shipped bootstraps and
/// the launcher's, gives it the OpenAI error shape. The next request is served normally.
#[test]
fn a_provider_failing_mid_body_reaches_the_client_as_an_openai_error() -> Result<()> {
    let gateway = ai::Gateway::start(Some(STALL_IDLE))?;
    let vms = VmBaseline::take(&gateway.envoy)?;
    let idle_listener = listener::faults_listener_addr(&gateway.envoy)?;
    let mut answers = Vec::new();
    for model in ai::MODELS {
        for (fault, addr) in
            [(Fault::ResetMidBody, gateway.envoy.listener_addr()), (Fault::Stall, idle_listener)]
        {
            answers.push((model, fault, gateway.chat(addr, model, fault, false)?));
            gateway.chat_completes(model)?;
            vms.check(&gateway.envoy, &format!("{model} {fault:?} mid-body"))?;
        }
    }
    let mut wrong = Vec::new();
    for (model, fault, answer) in answers {
        let shape =
            if answer.ending != client::Ending::Complete || !(500..600).contains(&answer.answer.status) {
                Err(anyhow::anyhow!("not a whole 5xx answer: {answer:?}"))
            } else {
                answer.answer.openai_error().map(drop)
            };
        if let Err(error) = shape {
            wrong.push(format!("{model} {fault:?}: {error}"));
        }
    }
    ensure!(wrong.is_empty(), "not OpenAI-shaped errors:\n{}", wrong.join("\n"));
    Ok(())
}

#[test]
fn a_stream_that_stalls_is_cut_at_the_idle_timeout_and_the_next_stream_completes() -> Result<()> {
    let gateway = ai::Gateway::start(Some(STALL_IDLE))?;
    let vms = VmBaseline::take(&gateway.envoy)?;
    let addr = listener::faults_listener_addr(&gateway.envoy)?;
    for model in ai::MODELS {
        let stalled = gateway.chat(addr, model, Fault::Stall, true)?;
        ai::cut_stream(&stalled, Fault::Stall)?;
        let took = stalled.elapsed;
        ensure!(took >= STALL_IDLE, "{model}: cut before the idle timeout, after {took:?}");
        ensure!(took < STALL_IDLE + BOUNDED, "{model}: cut long after the idle timeout, after {took:?}");
        ai::full_stream(&gateway.chat(addr, model, None, true)?, model)?;
        vms.check(&gateway.envoy, &format!("{model}'s stalled stream"))?;
    }
    Ok(())
}

/// The check the tests above rely on is live: the probe module panics on request, and Envoy's log shows it
/// (under `FAIL_CLOSED` the stats do not: the stream gets a 503 and the VM counts stay as they were).
#[test]
fn the_vm_check_catches_a_filter_that_traps() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let envoy =
        Envoy::builder("{}").wasm(tollgate_harness::probe_wasm()).upstream(upstream.addr()).start()?;
    let vms = VmBaseline::take(&envoy)?;
    vms.check(&envoy, "start-up")?;
    let trapped = envoy.get("/", &[("x-probe-op", "panic")])?;
    ensure!(trapped.status == 503, "{trapped:?}");
    let error = vms.check(&envoy, "a panic").err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(error.contains("panicked at"), "the check missed the trap: {error:?}");
    Ok(())
}

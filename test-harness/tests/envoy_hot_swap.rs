//! End to end: Tollgate is hot-swapped in a running Envoy (`--concurrency 2`) through file-based ECDS while
//! clients keep sending requests. Module v1 → v2 → a configuration the filter rejects → v3: no request
//! fails, Envoy refuses the bad version and keeps serving the one before, and the rate-limit counters v1
//! wrote in shared data still hold in v3. Each version is the same code under different bytes (a custom
//! section names it), so every swap is a real module swap with a new VM.
//! Needs Envoy and the built module: `./build.sh test` provides both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use serde_json::json;
use tollgate_harness::ecds::{labelled_module, publish, FILTER_NAME};
use tollgate_harness::envoy::Envoy;
use tollgate_harness::upstream::EchoUpstream;

const VERSION_HEADER: &str = "x-tollgate-version";
/// The probe rule's quota: v1 uses part of it, v3 must see what is left.
const PROBE_LIMIT: usize = 5;
/// Bounds on the load: whichever comes first. Each client paces itself, so the load is steady rather than
/// as fast as the machine goes.
const MAX_LOAD_REQUESTS: usize = 20_000;
const PACE: Duration = Duration::from_millis(5);
const MAX_LOAD_TIME: Duration = Duration::from_secs(90);

fn config(version: &str) -> String {
    json!({
        "response_headers": {"set": {VERSION_HEADER: version}},
        "ratelimit": {"rules": [
            {"name": "probe", "routes": ["/probe"], "key": [{"header": "x-probe"}], "requests": PROBE_LIMIT, "per": "hour"}
        ]}
    })
    .to_string()
}

/// What the load clients got: (status, version header) per request.
type Seen = Arc<Mutex<Vec<(u16, Option<String>)>>>;

fn start_load(
    envoy: &Arc<Envoy>,
    clients: usize,
    stop: &Arc<AtomicBool>,
    seen: &Seen,
) -> Vec<thread::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (envoy, stop, seen) = (Arc::clone(envoy), Arc::clone(stop), Arc::clone(seen));
            thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LOAD_TIME {
                    let answer = envoy.get("/load", &[]);
                    let mut seen = seen.lock().unwrap();
                    if seen.len() >= MAX_LOAD_REQUESTS {
                        return;
                    }
                    seen.push(match answer {
                        Ok(a) => (a.status, a.header(VERSION_HEADER).map(str::to_owned)),
                        // A connection error counts as a failure (status 0).
                        Err(_) => (0, None),
                    });
                    drop(seen);
                    thread::sleep(PACE);
                }
            })
        })
        .collect()
}

/// Waits until load requests are answered by `version`.
fn wait_for_version(envoy: &Envoy, seen: &Seen, version: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let seen = seen.lock().unwrap();
            if seen.iter().rev().take(20).any(|(_, v)| v.as_deref() == Some(version)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let last: Vec<_> = seen.lock().unwrap().iter().rev().take(5).cloned().collect();
            bail!("{version} never answered; last answers {last:?}; {}", ecds_report(envoy));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The ECDS counter `name` of the Tollgate filter (`extension_config_discovery.http_filter.tollgate.<name>`).
fn ecds_counter(envoy: &Envoy, name: &str) -> Result<u64> {
    let stats = envoy.stats()?;
    let suffix = format!(".{FILTER_NAME}.{name}");
    Ok(stats
        .iter()
        .filter(|(stat, _)| stat.starts_with("extension_config_discovery.") && stat.ends_with(&suffix))
        .map(|(_, value)| value)
        .sum())
}

fn wait_for_counter(envoy: &Envoy, name: &str, at_least: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = ecds_counter(envoy, name)?;
        if value >= at_least {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{name} stayed at {value}; {}", ecds_report(envoy));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The ECDS counters and the end of Envoy's log, for a failure message.
fn ecds_report(envoy: &Envoy) -> String {
    let stats = envoy.stats().map(|stats| {
        let ecds: Vec<String> = stats
            .iter()
            .filter(|(s, _)| s.starts_with("extension_config_discovery"))
            .map(|(s, v)| format!("{s}={v}"))
            .collect();
        ecds.join(" ")
    });
    format!("ECDS stats: {stats:?}\nEnvoy log:\n{}", tollgate_harness::envoy::tail(&envoy.log(), 40))
}

fn probe(envoy: &Envoy) -> Result<u16> {
    Ok(envoy.get("/probe", &[("x-probe", "p")])?.status)
}

#[test]
fn swapping_versions_under_load_fails_no_request_and_keeps_rate_limit_state() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let dir = tempfile::tempdir()?;
    let module = std::fs::read(tollgate_harness::tollgate_wasm())?;
    publish(dir.path(), &labelled_module(&module, "v1"), &config("v1"), "v1")?;
    let envoy = Arc::new(Envoy::builder("").ecds(dir.path()).upstream(upstream.addr()).start()?);

    // v1 counts three of the probe's five requests.
    for _ in 0..3 {
        assert_eq!(probe(&envoy)?, 200);
    }
    let (stop, seen): (Arc<AtomicBool>, Seen) = Default::default();
    let load = start_load(&envoy, 4, &stop, &seen);
    wait_for_version(&envoy, &seen, "v1")?;
    let reloads = ecds_counter(&envoy, "config_reload")?;

    publish(dir.path(), &labelled_module(&module, "v2"), &config("v2"), "v2")?;
    wait_for_counter(&envoy, "config_reload", reloads + 1)?;
    wait_for_version(&envoy, &seen, "v2")?;

    // A version the filter refuses: Envoy rejects the update and v2 goes on serving.
    let invalid =
        json!({"ratelimit": {"rules": [{"name": "broken", "requests": 0, "per": "hour"}]}}).to_string();
    publish(dir.path(), &labelled_module(&module, "v2-bad"), &invalid, "v2-bad")?;
    let rejected = wait_for_counter(&envoy, "update_rejected", 1)?;
    assert_eq!(ecds_counter(&envoy, "config_fail")?, 1, "{}", ecds_report(&envoy));
    thread::sleep(Duration::from_millis(300));
    let answer = envoy.get("/load", &[])?;
    assert_eq!((answer.status, answer.header(VERSION_HEADER)), (200, Some("v2")), "v2 still serves");

    publish(dir.path(), &labelled_module(&module, "v3"), &config("v3"), "v3")?;
    wait_for_version(&envoy, &seen, "v3")?;
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for client in load {
        client.join().unwrap();
    }

    let seen = seen.lock().unwrap();
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    ensure!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), seen.len(), failed);
    for version in ["v1", "v2", "v3"] {
        let served = seen.iter().filter(|(_, v)| v.as_deref() == Some(version)).count();
        ensure!(served > 0, "{version} answered no load request");
    }
    ensure!(seen.iter().all(|(_, v)| v.as_deref() != Some("v2-bad")), "the rejected version never served");
    println!("{} load requests, 0 failed; ECDS update_rejected {rejected}", seen.len());

    // v3 sees the counter v1 left: two more probes fit, the next is refused.
    let after: Vec<u16> = (0..3).map(|_| probe(&envoy)).collect::<Result<_>>()?;
    assert_eq!(after, vec![200, 200, 429], "v1's count carried over to v3");
    assert_eq!(upstream.received().iter().filter(|r| r.path == "/probe").count(), PROBE_LIMIT);
    Ok(())
}

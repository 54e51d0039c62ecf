//! What the bench prints after criterion's own results: host calls per request for every workload (the
//! profile for cutting them, also written to `target/bench/host_calls.json`), and issue 10's goals checked
//! against criterion's medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tollgate_harness::host::GuestProfile;

use super::workloads::Workload;

/// One workload's steady-state profile: `requests` requests after a warm-up one.
pub struct HostCalls {
    pub workload: &'static str,
    pub requests: u64,
    pub profile: GuestProfile,
}

/// Runs `requests` requests of every workload on a fresh, warmed-up VM and keeps what the guest did.
pub fn collect(workloads: &mut [Workload], requests: u64) -> anyhow::Result<Vec<HostCalls>> {
    let mut profiles = Vec::with_capacity(workloads.len());
    for workload in workloads {
        let mut vm = workload.start()?;
        vm.reset_profile();
        for _ in 0..requests {
            workload.run(&mut vm)?;
        }
        profiles.push(HostCalls { workload: workload.name, requests, profile: vm.profile() });
    }
    Ok(profiles)
}

/// The export's name without the `proxy_on_` every callback shares.
fn short(export: &str) -> &str {
    export.strip_prefix("proxy_on_").unwrap_or(export)
}

/// A per-request count: whole numbers bare, fractions with two decimals.
fn per_request(count: u64, requests: u64) -> String {
    if requests > 0 && count.is_multiple_of(requests) {
        (count / requests).to_string()
    } else {
        format!("{:.2}", count as f64 / requests.max(1) as f64)
    }
}

fn micros_per_request(time: Duration, requests: u64) -> f64 {
    time.as_secs_f64() * 1e6 / requests.max(1) as f64
}

/// The table: per workload, each export's runs, guest time and hostcalls per request, then each hostcall
/// per request with the exports that made it.
pub fn table(profiles: &[HostCalls]) -> String {
    let mut out = String::new();
    let requests = profiles.first().map_or(0, |p| p.requests);
    let _ = writeln!(out, "\nHost calls per request (mean of {requests} requests after one warm-up request)");
    for HostCalls { workload, requests, profile } in profiles {
        let n = *requests;
        let instructions = match profile.instructions() {
            0 => String::new(),
            count => format!(", {} wasm instructions", per_request(count, n)),
        };
        let _ = writeln!(
            out,
            "\n{workload}: {} host calls, {:.2} µs guest time{instructions} per request",
            per_request(profile.hostcall_total(), n),
            micros_per_request(profile.time(), n)
        );
        let _ = writeln!(
            out,
            "  {:<34} {:>8} {:>10} {:>10} {:>12}",
            "export", "runs", "µs", "hostcalls", "instructions"
        );
        for export in &profile.exports {
            let _ = writeln!(
                out,
                "  {:<34} {:>8} {:>10.2} {:>10} {:>12}",
                export.name,
                per_request(export.calls, n),
                micros_per_request(export.time, n),
                per_request(export.hostcall_total(), n),
                per_request(export.instructions, n)
            );
        }
        let _ = writeln!(out, "  {:<34} {:>8}   made in", "hostcall", "calls");
        let mut by_count: Vec<(String, u64)> = profile.hostcalls().into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (hostcall, count) in by_count {
            let made_in: Vec<String> = profile
                .exports
                .iter()
                .filter_map(|e| e.hostcalls.get(&hostcall).map(|c| (short(&e.name), *c)))
                .map(|(export, c)| format!("{export} {}", per_request(c, n)))
                .collect();
            let _ = writeln!(out, "  {hostcall:<34} {:>8}   {}", per_request(count, n), made_in.join(", "));
        }
    }
    out
}

/// The same data as JSON, per request, for tools and for diffing runs.
pub fn to_json(profiles: &[HostCalls]) -> Value {
    let rate = |count: u64, n: u64| count as f64 / n.max(1) as f64;
    let workloads: Vec<Value> = profiles
        .iter()
        .map(|HostCalls { workload, requests, profile }| {
            let n = *requests;
            let exports: BTreeMap<&str, Value> = profile
                .exports
                .iter()
                .map(|e| {
                    let hostcalls: BTreeMap<&str, f64> =
                        e.hostcalls.iter().map(|(k, c)| (k.as_str(), rate(*c, n))).collect();
                    let value = json!({
                        "runs_per_request": rate(e.calls, n),
                        "guest_us_per_request": micros_per_request(e.time, n),
                        "hostcalls_per_request": rate(e.hostcall_total(), n),
                        "instructions_per_request": rate(e.instructions, n),
                        "hostcalls": hostcalls,
                    });
                    (e.name.as_str(), value)
                })
                .collect();
            let by_hostcall: BTreeMap<String, f64> =
                profile.hostcalls().into_iter().map(|(k, c)| (k, rate(c, n))).collect();
            json!({
                "workload": workload,
                "requests": n,
                "hostcalls_per_request": rate(profile.hostcall_total(), n),
                "guest_us_per_request": micros_per_request(profile.time(), n),
                "instructions_per_request": rate(profile.instructions(), n),
                "by_hostcall": by_hostcall,
                "by_export": exports,
            })
        })
        .collect();
    json!({"module": "dist/tollgate.wasm", "host": "tollgate-harness wasmtime host", "workloads": workloads})
}

/// Where cargo puts build output: `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tollgate_harness::repo_root().join("target"))
}

/// Where criterion keeps its estimates, resolved as criterion does.
fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME").map(PathBuf::from).unwrap_or_else(|| target_dir().join("criterion"))
}

/// Criterion's median for a benchmark (ns), if it was measured after `since` (this run).
fn median_ns(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new/estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates.pointer("/median/point_estimate").and_then(Value::as_f64)
}

/// Issue 10's harness goals: what is measured, the benchmark that measures it, its pass-through
/// baseline, the limit, and how many guest calls one iteration times (to take the harness floor off).
const GOALS: [(&str, &str, &str, f64, f64); 3] = [
    ("headers path", "headers_path/api_key_local_limit", "headers_path/pass_through", 2_000.0, 6.0),
    ("5 KB normalization", "normalize_5kb/openai_to_anthropic", "normalize_5kb/pass_through", 30_000.0, 1.0),
    ("SSE chunk", "sse_chunk/anthropic_to_openai", "sse_chunk/pass_through", 2_000.0, 1.0),
];

/// The floor benchmark and how many guest calls it makes.
const FLOOR: (&str, f64) = ("harness_floor/empty_exchange", 6.0);

fn micros(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_string(), |ns| format!("{:.2} µs", ns / 1e3))
}

/// PASS/MISS per goal from criterion's medians of this run (guest time, the filter's cost), with the
/// pass-through beside it and, for reading, the median less the harness's own per-call floor.
pub fn goals(since: SystemTime) -> String {
    let dir = criterion_dir();
    let floor_per_call = median_ns(&dir, FLOOR.0, since).map(|ns| ns / FLOOR.1);
    let mut out =
        String::from("\nGoals (issue 10), criterion median of the filter's guest time in this run\n");
    let _ = writeln!(
        out,
        "  {:<18} {:<34} {:>10} {:>6} {:>5} {:>13} {:>11}",
        "goal", "benchmark", "median", "limit", "", "pass-through", "less floor"
    );
    for (goal, id, baseline, limit_ns, calls) in GOALS {
        let median = median_ns(&dir, id, since);
        let verdict = match median {
            Some(ns) if ns <= limit_ns => "PASS",
            Some(_) => "MISS",
            None => "n/a",
        };
        let _ = writeln!(
            out,
            "  {goal:<18} {id:<34} {:>10} {:>6} {verdict:>5} {:>13} {:>11}",
            micros(median),
            format!("{:.0} µs", limit_ns / 1e3),
            micros(median_ns(&dir, baseline, since)),
            micros(median.zip(floor_per_call).map(|(ns, floor)| ns - floor * calls)),
        );
    }
    let _ = writeln!(
        out,
        "  harness floor: {} per guest call that returns at once ({} / {}), part of every median",
        micros(floor_per_call),
        FLOOR.0,
        FLOOR.1
    );
    if GOALS.iter().any(|goal| median_ns(&dir, goal.1, since).is_none()) {
        let _ =
            writeln!(out, "  (n/a: not measured in this run, e.g. filtered out or criterion in test mode)");
    }
    out
}

//! `./build.sh bench`: criterion micro-benchmarks of `dist/tollgate.wasm` in the wasmtime harness. Each
//! benchmark reports the FILTER's cost: the wall time spent inside guest calls (the exports the host
//! invokes, hostcalls included), summed by the host's profiler, never the harness building the exchange.
//! Then it prints host calls per request for every workload (also `target/bench/host_calls.json`) and
//! issue 10's goals against criterion's medians.
//!
//! `cargo bench -p tollgate-harness --bench micro [-- FILTER]`; criterion's own options apply.
//!
//! `TOLLGATE_WASM_INSTRUCTIONS=1` counts instead of timing: no criterion runs (counting slows the guest),
//! and the table gains the wasm instructions each workload runs per request, a figure as repeatable on a
//! busy machine as on a quiet one (for comparing a change before and after; the time it stands for is the
//! timed run's).

#[path = "micro/report.rs"]
mod report;
#[path = "micro/workloads.rs"]
mod workloads;

use std::time::{Duration, SystemTime};

use criterion::{Criterion, SamplingMode};
use tollgate_harness::host::{Host, Vm};

use workloads::Workload;

/// Which guest time a benchmark counts per iteration (one request).
#[derive(Clone, Copy)]
enum Measure {
    /// Every export the exchange ran: context create, headers both ways, log, done, delete.
    Exchange,
    /// One export only.
    Export(&'static str),
    /// One export, divided by how many times it ran: per body chunk.
    PerRun(&'static str),
}

/// Group, benchmark name, workload, and what is measured.
const BENCHMARKS: &[(&str, &str, &str, Measure)] = &[
    ("harness_floor", "empty_exchange", "harness_floor", Measure::Exchange),
    ("headers_path", "pass_through", "pass_through", Measure::Exchange),
    ("headers_path", "header_edits", "header_edits", Measure::Exchange),
    ("headers_path", "local_reply", "local_reply", Measure::Exchange),
    ("headers_path", "api_key", "api_key", Measure::Exchange),
    ("headers_path", "api_key_local_limit", "api_key_local_limit", Measure::Exchange),
    ("headers_path", "jwt_es256_cached", "jwt_es256_cached", Measure::Exchange),
    // Verification happens in the request headers callback; the rest of the exchange is headers_path's.
    ("jwt_verify", "cached", "jwt_es256_cached", Measure::Export("proxy_on_request_headers")),
    ("jwt_verify", "uncached", "jwt_es256_uncached", Measure::Export("proxy_on_request_headers")),
    // The whole 5 KB body arrives in one chunk with end of stream: one body callback translates it.
    ("normalize_5kb", "pass_through", "chat_5kb_pass_through", Measure::Export("proxy_on_request_body")),
    (
        "normalize_5kb",
        "openai_to_anthropic",
        "chat_5kb_openai_to_anthropic",
        Measure::Export("proxy_on_request_body"),
    ),
    // A whole 50-event stream per iteration, divided by its 50 chunks: the mean chunk of a real stream
    // (message_start, deltas, usage, stop), not just the steady-state delta.
    ("sse_chunk", "pass_through", "sse_50_pass_through", Measure::PerRun("proxy_on_response_body")),
    (
        "sse_chunk",
        "anthropic_to_openai",
        "sse_50_anthropic_to_openai",
        Measure::PerRun("proxy_on_response_body"),
    ),
];

/// Requests per workload in the host-call profile (after one warm-up request).
const PROFILE_REQUESTS: u64 = 100;

/// Guest time of `iters` requests, as `Measure` selects it.
fn guest_time(
    vm: &mut Vm,
    workload: &mut Workload,
    iters: u64,
    measure: Measure,
) -> anyhow::Result<Duration> {
    vm.reset_profile();
    for _ in 0..iters {
        workload.run(vm)?;
    }
    Ok(match measure {
        Measure::Exchange => vm.guest_time(),
        Measure::Export(export) => vm.guest_time_in(export),
        Measure::PerRun(export) => {
            let runs = vm.guest_calls_of(export);
            anyhow::ensure!(
                runs >= iters,
                "{}: {export} ran {runs} times in {iters} requests",
                workload.name
            );
            vm.guest_time_in(export).mul_f64(iters as f64 / runs as f64)
        }
    })
}

fn run_benchmarks(criterion: &mut Criterion, workloads: &mut [Workload]) -> anyhow::Result<()> {
    let mut groups: Vec<&str> = BENCHMARKS.iter().map(|b| b.0).collect();
    groups.dedup();
    for group_name in groups {
        let mut group = criterion.benchmark_group(group_name);
        if group_name == "jwt_verify" {
            // An uncached verification takes milliseconds: equal-sized samples need far fewer iterations.
            group.sampling_mode(SamplingMode::Flat);
        }
        for (_, name, workload, measure) in BENCHMARKS.iter().filter(|b| b.0 == group_name) {
            let Some(workload) = workloads.iter_mut().find(|w| w.name == *workload) else {
                anyhow::bail!("{group_name}/{name}: no workload {workload}");
            };
            let mut vm = workload.start()?;
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| match guest_time(&mut vm, workload, iters, *measure) {
                    Ok(time) => time,
                    // Criterion's routine cannot fail; a filter error mid-run invalidates the whole run.
                    Err(error) => {
                        eprintln!("error: {group_name}/{name}: {error:#}");
                        std::process::exit(1);
                    }
                });
            });
        }
        group.finish();
    }
    Ok(())
}

/// Criterion measures only under `cargo bench` (`--bench` without `--test`/`--list`); otherwise
/// (`cargo test --benches`) it runs each routine once, and a short profile does.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list")
}

fn main() -> anyhow::Result<()> {
    let started = SystemTime::now();
    let host = Host::load(tollgate_harness::tollgate_wasm())?;
    let mut workloads = workloads::all(&host)?;
    // About 12 x (1 s warm-up + 3 s measuring + analysis): a minute of benchmarks.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .without_plots()
        .configure_from_args();
    let counting = tollgate_harness::host::counts_instructions();
    if !counting {
        run_benchmarks(&mut criterion, &mut workloads)?;
        criterion.final_summary();
    }

    let requests = if measuring() { PROFILE_REQUESTS } else { 2 };
    let profiles = report::collect(&mut workloads, requests)?;
    print!("{}", report::table(&profiles));
    let json_path = report::target_dir().join("bench/host_calls.json");
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report::to_json(&profiles))?)?;
    println!("\n(written to {})", json_path.display());
    if !counting {
        print!("{}", report::goals(started));
    }
    Ok(())
}

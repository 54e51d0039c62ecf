//! `./build.sh bench`: the cost of one request through `dist/tollgate.wasm` in the wasmtime host, per
//! configuration, printed side by side with its ratio to a pass-through baseline measured in the same run.
//! Absolute numbers include the host's own work (building the exchange), so compare ratios across runs.

use std::hint::black_box;
use std::time::Instant;

use tollgate_harness::host::{Host, Request, Response, Vm};

const BATCHES: usize = 7;
const BATCH: usize = 2_000;

struct Case {
    name: &'static str,
    config: &'static str,
    request: fn() -> Request,
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "pass-through (empty config)", config: "{}", request: || Request::get("/v1/models") },
        Case {
            name: "header edits both ways",
            config: r#"{"upstream_headers":{"set":{"x-tollgate":"on"},"remove":["x-internal"]},
                        "response_headers":{"set":{"x-served-by":"tollgate"}}}"#,
            request: || Request::get("/v1/models").header("x-internal", "secret"),
        },
        Case {
            name: "local reply",
            config: r#"{"local_replies":[{"path_prefix":"/tollgate/ping","status":200,"body":{"pong":true}}]}"#,
            request: || Request::get("/tollgate/ping"),
        },
    ]
}

/// Median nanoseconds per request over several batches (the median resists a noisy shared machine).
fn measure(vm: &mut Vm, request: fn() -> Request) -> anyhow::Result<f64> {
    let response = Response::status(200).header("content-type", "application/json").body("{}");
    for _ in 0..BATCH / 4 {
        vm.send(request()).respond_with(response.clone()).run()?;
    }
    let mut per_request = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(vm.send(request()).respond_with(response.clone()).run()?);
        }
        per_request.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per_request.sort_by(f64::total_cmp);
    Ok(per_request.get(BATCHES / 2).copied().unwrap_or(f64::NAN))
}

fn main() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::tollgate_wasm())?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for case in cases() {
        let mut vm = host.plugin(case.config).start()?;
        rows.push((case.name, measure(&mut vm, case.request)?));
    }
    let baseline = rows.first().map_or(f64::NAN, |(_, ns)| *ns);
    println!("\nTollgate in the wasmtime host: median of {BATCHES} batches x {BATCH} requests\n");
    println!("{:<34} {:>12} {:>10}", "case", "ns/request", "ratio");
    for (name, ns) in &rows {
        println!("{name:<34} {ns:>12.0} {:>9.2}x", ns / baseline);
    }
    println!("\n(measured in {:.1?}; ratio is against the first row, same run)", started.elapsed());
    Ok(())
}

//! The report: per row the medians over the repetitions, the ratios the performance goals are written in
//! with PASS or MISS, the module's size and the VM's linear memory; printed, and written as JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::load::Sample;

/// What is known about the run before the rows' numbers.
pub struct Context {
    pub cores: usize,
    pub pinned: bool,
    pub envoy_version: String,
    pub oha_version: String,
    pub seconds: u64,
    pub reps: usize,
    pub connections: u32,
    /// The upstream alone, with wrk on its core: (GET, 5 KB POST answered with the SSE stream).
    pub upstream_alone: (Sample, Sample),
    /// Writes the upstream sends the 50 SSE events in.
    pub sse_writes: usize,
    pub module_bytes: u64,
    /// `/proc/loadavg` when the run started and ended: other work on the machine shows here.
    pub load_average: (String, String),
}

pub struct RowResult {
    pub id: &'static str,
    pub what: &'static str,
    pub saturated: Vec<Sample>,
}

impl RowResult {
    pub fn rps(&self) -> f64 {
        median(self.saturated.iter().map(|s| s.rps))
    }

    /// µs of Envoy's one core per request at saturation.
    pub fn cost_us(&self) -> f64 {
        1e6 / self.rps()
    }

    /// µs of CPU time Envoy used per request, whatever share of its core it got.
    pub fn cpu_us(&self) -> f64 {
        median(self.saturated.iter().filter_map(|s| s.cpu_us))
    }

    /// (max − min) / median of the repetitions' rps, in percent.
    fn spread(&self) -> f64 {
        let rps = self.saturated.iter().map(|s| s.rps);
        let (min, max) = rps.fold((f64::INFINITY, 0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
        (max - min) / self.rps() * 100.0
    }
}

/// The AI pair run at one fixed rate, interleaved.
pub struct FixedRate {
    pub why: &'static str,
    pub rate: f64,
    pub pass_through: Vec<Sample>,
    pub ai: Vec<Sample>,
}

impl FixedRate {
    pub fn new(why: &'static str, rate: f64) -> Self {
        FixedRate { why, rate: rate.round(), pass_through: Vec::new(), ai: Vec::new() }
    }

    fn added(&self, latency: fn(&Sample) -> f64) -> f64 {
        median(self.ai.iter().map(latency)) - median(self.pass_through.iter().map(latency))
    }
}

/// Linear memory of a fresh K Envoy: (requests served, bytes), `None` while the filter has no gauge; and of
/// the long-running rows' Envoys at the end: (row, requests, bytes).
pub struct Memory {
    pub readings: Vec<(u64, Option<u64>)>,
    pub after_bench: Vec<(&'static str, u64, Option<u64>)>,
}

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut all: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    all.sort_by(f64::total_cmp);
    let at = |i: usize| all.get(i).copied().unwrap_or(f64::NAN);
    match all.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => at(n / 2),
        n => (at(n / 2 - 1) + at(n / 2)) / 2.0,
    }
}

struct Goal {
    name: &'static str,
    value: String,
    bar: &'static str,
    pass: Option<bool>,
}

/// A ratio goal; `cpu` is the same ratio from Envoy's CPU time per request, shown beside it.
fn goal(name: &'static str, value: f64, cpu: f64, bar: &'static str, pass: bool) -> Goal {
    Goal { name, value: format!("{value:.2} (cpu {cpu:.2})"), bar, pass: Some(pass) }
}

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "",
    }
}

fn bytes(value: Option<u64>) -> String {
    value
        .map_or_else(|| "n/a".to_owned(), |b| format!("{b} bytes ({:.2} MiB)", b as f64 / f64::from(1 << 20)))
}

pub fn render(
    context: &Context,
    rows: &[RowResult],
    fixed: &[FixedRate],
    memory: &Memory,
) -> (String, Value) {
    let find = |id: &str| rows.iter().find(|r| r.id == id);
    let cost = |id: &str| find(id).map_or(f64::NAN, RowResult::cost_us);
    let rps = |id: &str| find(id).map_or(f64::NAN, RowResult::rps);
    let over_a = |id: &str| (cost(id) - cost("A")) / (cost("T") - cost("A"));
    let cpu = |id: &str| find(id).map_or(f64::NAN, RowResult::cpu_us);
    let cpu_over_a = |id: &str| (cpu(id) - cpu("A")) / (cpu("T") - cpu("A"));
    // The goal's rate is the first; any other is for reference.
    let (added_p50, added_p99) =
        fixed.first().map_or((f64::NAN, f64::NAN), |f| (f.added(|s| s.p50_us), f.added(|s| s.p99_us)));
    let readings: Vec<Option<u64>> = memory.readings.iter().map(|(_, b)| *b).collect();
    // From the 10k reading on; the first, after a request or two, is the VM before it settled.
    let settled = readings.get(1..).unwrap_or_default();
    let flat = settled.len() >= 2 && settled.windows(2).all(|w| matches!(w, [Some(a), Some(b)] if a == b));
    let memory_pass = readings.last().copied().flatten().map(|b| b <= 4 << 20 && flat);
    let goals = [
        goal("(K-A)/(T-A) cost", over_a("K"), cpu_over_a("K"), "<= 1.50", over_a("K") <= 1.5),
        goal(
            "K rps / N-K rps",
            rps("K") / rps("N-K"),
            cpu("N-K") / cpu("K"),
            ">= 0.80",
            rps("K") / rps("N-K") >= 0.8,
        ),
        goal(
            "J rps / N-J rps",
            rps("J") / rps("N-J"),
            cpu("N-J") / cpu("J"),
            ">= 0.80",
            rps("J") / rps("N-J") >= 0.8,
        ),
        goal("(J-A)/(T-A) cost", over_a("J"), cpu_over_a("J"), "<= 2.00", over_a("J") <= 2.0),
        Goal {
            name: "AI added p50",
            value: format!("{added_p50:.0} µs"),
            bar: "<= 100 µs",
            pass: Some(added_p50 <= 100.0),
        },
        Goal { name: "AI added p99", value: format!("{added_p99:.0} µs"), bar: "(no goal)", pass: None },
        Goal {
            name: "wasm linear memory",
            value: bytes(readings.last().copied().flatten()),
            bar: "<= 4 MiB, flat 10k..100k",
            pass: memory_pass,
        },
    ];

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nTollgate in Envoy (issue 10): one worker, every row measured back to back in one run\n"
    );
    let pinning = match context.pinned {
        true => "Envoy on core 0; wrk/oha and the upstream on core 1",
        false => "NOT pinned (fewer than 2 cores)",
    };
    let _ = writeln!(out, "machine   {} cores, {pinning}", context.cores);
    let _ = writeln!(
        out,
        "          load average {} at the start, {} at the end (above ~1.5: other work shares the cores)",
        context.load_average.0, context.load_average.1
    );
    let _ = writeln!(out, "envoy     {}, --concurrency 1, envoy.wasm.runtime.v8", context.envoy_version);
    let _ = writeln!(
        out,
        "load      wrk, {} connections, {} x {} s per row, rows interleaved in each repetition, medians",
        context.connections, context.reps, context.seconds
    );
    let (get, sse) = context.upstream_alone;
    let _ = writeln!(
        out,
        "upstream  alone, wrk on the same core: {:.0} rps GET; {:.0} rps 5 KB POST -> 50-event SSE in {} write(s)\n",
        get.rps, sse.rps, context.sse_writes
    );
    let _ = writeln!(
        out,
        "{:<8} {:<52} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "row", "what", "rps", "spread", "cost µs", "+µs vs A", "cpu µs", "p50 µs", "p99 µs"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<52} {:>8.0} {:>6.1}% {:>8.1} {:>8.1} {:>8.1} {:>8.0} {:>8.0}",
            row.id,
            row.what,
            row.rps(),
            row.spread(),
            row.cost_us(),
            row.cost_us() - cost("A"),
            row.cpu_us(),
            median(row.saturated.iter().map(|s| s.p50_us)),
            median(row.saturated.iter().map(|s| s.p99_us)),
        );
    }
    let _ = writeln!(
        out,
        "(cost = 1e6 / rps, µs of Envoy's core per request; spread = (max - min) / median of the rps;"
    );
    let _ = writeln!(
        out,
        " cpu = Envoy's CPU time per request from /proc, which other work on its core does not inflate;"
    );
    let _ = writeln!(out, " latencies here are at saturation, so mostly queueing)\n");
    for rate in fixed {
        let _ = writeln!(
            out,
            "fixed rate {:.0} rps ({}): {}, --latency-correction, {} x {} s, medians",
            rate.rate, rate.why, context.oha_version, context.reps, context.seconds
        );
        let _ = writeln!(out, "{:<8} {:>8} {:>9} {:>9}", "row", "rps", "p50 µs", "p99 µs");
        for (id, runs) in [("AI-pass", &rate.pass_through), ("AI", &rate.ai)] {
            let at = |f: fn(&Sample) -> f64| median(runs.iter().map(f));
            let _ = writeln!(
                out,
                "{id:<8} {:>8.0} {:>9.0} {:>9.0}",
                at(|s| s.rps),
                at(|s| s.p50_us),
                at(|s| s.p99_us)
            );
        }
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>9.0} {:>9.0}",
            "added",
            "",
            rate.added(|s| s.p50_us),
            rate.added(|s| s.p99_us)
        );
        // Near a row's own capacity its latency is mostly queueing.
        let load = rate.rate / rps("AI") * 100.0;
        if load > 80.0 {
            let _ = writeln!(out, "note: that is {load:.0}% of AI's saturated rps: AI's latency at this rate is mostly queueing");
        }
        let _ = writeln!(out);
    }
    if rps("AI-pass") > 0.8 * sse.rps {
        let _ = writeln!(
            out,
            "note: AI-pass reached {:.0}% of what the upstream and wrk manage alone on the load core, so it may be\n      bound there rather than by Envoy (fewer BENCH_SSE_WRITES make the upstream cheaper)\n",
            rps("AI-pass") / sse.rps * 100.0
        );
    }
    let _ = writeln!(out, "goals");
    for goal in &goals {
        let _ =
            writeln!(out, "  {:<20} {:>26}   {:<25} {}", goal.name, goal.value, goal.bar, verdict(goal.pass));
    }
    let _ = writeln!(
        out,
        "  (the issue's K-vs-N goal is K / N-K; J / N-J is held to the same bar for reference)\n"
    );
    let _ = writeln!(
        out,
        "module    dist/tollgate.wasm: {} bytes ({} KiB)",
        context.module_bytes,
        context.module_bytes / 1024
    );
    let _ =
        write!(out, "memory    wasmcustom.tollgate_wasm_memory_bytes of a fresh K Envoy, after requests:");
    for (requests, value) in &memory.readings {
        let _ = write!(out, "\n          {requests:>7}: {}", bytes(*value));
    }
    let _ = writeln!(out);
    for (id, requests, value) in &memory.after_bench {
        let _ = writeln!(
            out,
            "          row {id}'s Envoy at the end of the bench ({requests} requests): {}",
            bytes(*value)
        );
    }

    let json = json!({
        "context": {
            "cores": context.cores, "pinned": context.pinned, "envoy": context.envoy_version,
            "oha": context.oha_version, "seconds": context.seconds, "repetitions": context.reps,
            "connections": context.connections, "sse_writes": context.sse_writes,
            "load_average": [context.load_average.0, context.load_average.1],
            "upstream_alone_rps": {"get": get.rps, "sse_post": sse.rps},
        },
        "rows": rows.iter().map(|row| json!({
            "id": row.id, "what": row.what, "rps": row.rps(), "cost_us": row.cost_us(), "cpu_us": row.cpu_us(),
            "p50_us": median(row.saturated.iter().map(|s| s.p50_us)),
            "p99_us": median(row.saturated.iter().map(|s| s.p99_us)),
            "runs": row.saturated.iter().map(sample_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "fixed_rates": fixed.iter().map(|rate| json!({
            "rps": rate.rate, "why": rate.why,
            "added_p50_us": rate.added(|s| s.p50_us), "added_p99_us": rate.added(|s| s.p99_us),
            "ai_pass_runs": rate.pass_through.iter().map(sample_json).collect::<Vec<_>>(),
            "ai_runs": rate.ai.iter().map(sample_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "goals": goals.iter().map(|g| json!({"name": g.name, "value": g.value, "bar": g.bar, "pass": g.pass})).collect::<Vec<_>>(),
        "module_bytes": context.module_bytes,
        "memory": {
            "gauge": "wasmcustom.tollgate_wasm_memory_bytes",
            "readings": memory.readings.iter().map(|(n, b)| json!({"requests": n, "bytes": b})).collect::<Vec<_>>(),
            "after_bench": memory.after_bench.iter().map(|(id, n, b)| json!({"row": id, "requests": n, "bytes": b})).collect::<Vec<_>>(),
        },
    });
    (out, json)
}

fn sample_json(sample: &Sample) -> Value {
    json!({"rps": sample.rps, "p50_us": sample.p50_us, "p99_us": sample.p99_us, "requests": sample.requests,
           "cpu_us": sample.cpu_us})
}

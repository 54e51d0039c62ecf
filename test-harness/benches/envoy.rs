//! `./build.sh bench`, the Envoy half (issue 10): requests per second and latency of a real Envoy with one
//! worker pinned to core 0, the load generator and upstream on core 1, in one run: bare Envoy (A), native
//! filters doing the nearest equivalent (N-K, N-J), a trivial wasm filter (T; T+M adds four counter increments
//! per request, T+H an API key's two header edits, T+S 16 SHA-256 digests, T+K every host call K makes),
//! Tollgate with an empty config (P), an API key alone (K0), an API key (K) or a cached ES256 JWT (J) and a
//! local limit, and Tollgate's AI path next to the same traffic passed through. Prints the table with the
//! goals' ratios and writes it as JSON to `target/bench/envoy.json`.
//!
//! Knobs: BENCH_ROWS (all): only these row ids, comma-separated, for a quick comparison (the fixed-rate part
//! needs both AI rows, the memory part K). BENCH_SECONDS (5) per run, BENCH_REPS (5) repetitions, BENCH_CONNECTIONS (32),
//! BENCH_MEMORY_REQUESTS (100000), BENCH_SSE_WRITES (1): the writes the upstream sends its 50 SSE events in
//! (each event is its own HTTP chunk either way; 50 writes, one per event, costs the load core so much that it,
//! not Envoy, bounds AI-pass). ENVOY_BIN, TOLLGATE_WASM and OHA_BIN pick the binaries.

// A bench target's root looks for modules beside it, not in `envoy/`.
#[path = "envoy/bootstrap.rs"]
mod bootstrap;
#[path = "envoy/launcher.rs"]
mod launcher;
#[path = "envoy/load.rs"]
mod load;
#[path = "envoy/report.rs"]
mod report;
#[path = "envoy/rows.rs"]
mod rows;
#[path = "envoy/upstream.rs"]
mod upstream;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};

use launcher::{BenchEnvoy, Pinning};
use load::{Amount, Tools};
use report::{FixedRate, Memory, RowResult};
use rows::{AiTraffic, Credentials, Kind, Modules, Row};
use upstream::FastUpstream;

const MEMORY_GAUGE: &str = "wasmcustom.tollgate_wasm_memory_bytes";

struct Settings {
    run: Duration,
    reps: usize,
    connections: u32,
    memory_requests: u64,
    /// Writes the upstream sends the 50 SSE events in.
    sse_writes: usize,
    /// BENCH_ROWS: only these rows (ids, comma or space separated), for a quick comparison.
    rows: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let knob = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(value) => {
                    value.trim().parse().with_context(|| format!("{name}={value:?}: expected a whole number"))
                }
                Err(_) => Ok(default),
            }
        };
        Ok(Settings {
            run: Duration::from_secs(knob("BENCH_SECONDS", 5)?.max(1)),
            reps: usize::try_from(knob("BENCH_REPS", 5)?.max(1))?,
            connections: u32::try_from(knob("BENCH_CONNECTIONS", 32)?.max(1))?,
            memory_requests: knob("BENCH_MEMORY_REQUESTS", 100_000)?.max(10_000),
            sse_writes: usize::try_from(knob("BENCH_SSE_WRITES", 1)?.clamp(1, rows::EVENTS as u64))?,
            rows: std::env::var("BENCH_ROWS")
                .ok()
                .map(|ids| ids.split([',', ' ']).filter(|id| !id.is_empty()).map(str::to_string).collect()),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let load_at_start = load_average();
    let settings = Settings::from_env()?;
    let tollgate = tollgate_harness::tollgate_wasm();
    ensure!(tollgate.is_file(), "{} does not exist: run ./build.sh build", tollgate.display());
    let trivial = build_trivial_filter()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pinning = (cores >= 2).then_some(Pinning { envoy_core: 0, load_core: 1 });
    match pinning {
        Some(pinning) => pinning.pin_self()?,
        None => {
            eprintln!("warning: {cores} core(s): Envoy and the load generator run unpinned, sharing a core")
        }
    }
    let envoy_bin = launcher::envoy_binary()?;
    let tools = Tools::find(pinning, target_dir().join("bench-tools/bin/oha"))?;
    let credentials = Credentials::new()?;
    let ai = AiTraffic::new()?;
    let upstream = FastUpstream::start(ai.events.clone(), settings.sse_writes)?;
    let mut rows = rows::rows(&credentials, &Modules { tollgate: &tollgate, trivial: &trivial }, &ai)?;
    if let Some(wanted) = &settings.rows {
        for id in wanted {
            ensure!(rows.iter().any(|row| row.id == id), "BENCH_ROWS: no row {id}");
        }
        rows.retain(|row| wanted.iter().any(|id| id == row.id));
    }

    let base = format!("http://{}", upstream.addr());
    let plain_request = rows.first().map(|row| row.request.clone()).context("no rows")?;
    eprintln!("bench: the upstream alone (wrk on the same core)");
    let upstream_alone = (
        tools.wrk(&format!("{base}/hello"), &plain_request, settings.connections, settings.run)?,
        tools.wrk(&format!("{base}/v1/chat/completions"), &ai.request, settings.connections, settings.run)?,
    );

    let envoys = rows
        .iter()
        .map(|row| {
            let yaml = bootstrap::bootstrap(row, upstream.addr().port())?;
            let envoy = BenchEnvoy::start(&envoy_bin, row.id, &yaml, pinning)?;
            check(row, &envoy, &upstream)
                .with_context(|| format!("row {}: {}\n{}", row.id, row.what, envoy.log_tail()))?;
            Ok(envoy)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!("bench: {} Envoys up and answering as expected; warming up", envoys.len());
    for (row, envoy) in rows.iter().zip(&envoys) {
        tools.wrk(
            &envoy.url(row.request.path),
            &row.request,
            settings.connections,
            Duration::from_secs(2),
        )?;
    }

    let mut results: Vec<RowResult> =
        rows.iter().map(|row| RowResult { id: row.id, what: row.what, saturated: Vec::new() }).collect();
    for rep in 1..=settings.reps {
        eprintln!("bench: saturation, repetition {rep} of {}", settings.reps);
        for ((row, envoy), result) in rows.iter().zip(&envoys).zip(&mut results) {
            let url = envoy.url(row.request.path);
            let cpu_before = envoy.cpu_us();
            let mut sample = tools.wrk(&url, &row.request, settings.connections, settings.run)?;
            sample.cpu_us =
                cpu_before.zip(envoy.cpu_us()).map(|(a, b)| (b - a) / sample.requests.max(1) as f64);
            result.saturated.push(sample);
        }
    }

    // The goal's rate, half of what the pass-through managed; and half of what AI itself managed, where the
    // added latency is Tollgate's work rather than a queue when AI's capacity is below the goal's rate.
    let saturated = |id: &str| results.iter().find(|r| r.id == id).map_or(f64::NAN, RowResult::rps);
    let mut fixed = vec![
        FixedRate::new("half of AI-pass's saturated rps: the goal's rate", saturated("AI-pass") / 2.0),
        FixedRate::new("half of AI's own saturated rps, for reference", saturated("AI") / 2.0),
    ];
    let pair = |kind: Kind| rows.iter().zip(&envoys).find(|(row, _)| row.kind == kind);
    let ai_pair = pair(Kind::AiPassThrough).zip(pair(Kind::Ai));
    if ai_pair.is_none() {
        eprintln!("bench: BENCH_ROWS leaves out an AI row: no fixed-rate runs");
        fixed.clear();
    }
    for (rate, ((pass_row, pass_envoy), (ai_row, ai_envoy))) in
        fixed.iter_mut().zip(std::iter::repeat(ai_pair).flatten())
    {
        ensure!(rate.rate.is_finite() && rate.rate >= 1.0, "a fixed rate of {} rps", rate.rate);
        for rep in 1..=settings.reps {
            eprintln!("bench: the AI pair at {:.0} rps, repetition {rep} of {}", rate.rate, settings.reps);
            let run = |row: &Row, envoy: &BenchEnvoy| {
                let url = envoy.url(row.request.path);
                tools.oha(
                    &url,
                    &row.request,
                    settings.connections,
                    Some(rate.rate),
                    Amount::For(settings.run),
                )
            };
            rate.pass_through.push(run(pass_row, pass_envoy)?);
            rate.ai.push(run(ai_row, ai_envoy)?);
        }
    }

    let mut after_bench = Vec::new();
    for (row, envoy) in rows.iter().zip(&envoys) {
        if matches!(row.id, "K" | "J" | "AI") {
            after_bench.push((row.id, envoy.requests()?, envoy.stat(MEMORY_GAUGE)?));
        }
    }
    drop(envoys);
    let readings = match rows.iter().any(|row| row.id == "K") {
        true => memory_run(&rows, &envoy_bin, &upstream, &tools, &settings, pinning)?,
        false => Vec::new(),
    };
    let memory = Memory { readings, after_bench };

    let context = report::Context {
        cores,
        pinned: pinning.is_some(),
        envoy_version: launcher::envoy_version(&envoy_bin),
        oha_version: tools.oha_version(),
        seconds: settings.run.as_secs(),
        reps: settings.reps,
        connections: settings.connections,
        upstream_alone: (upstream_alone.0, upstream_alone.1),
        sse_writes: settings.sse_writes,
        module_bytes: std::fs::metadata(&tollgate)?.len(),
        load_average: (load_at_start, load_average()),
    };
    let (table, json) = report::render(&context, &results, &fixed, &memory);
    println!("{table}");
    let out = target_dir().join("bench/envoy.json");
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)?;
    let (gets, posts) = upstream.served();
    println!(
        "(written to {}; the upstream served {gets} GETs and {posts} POSTs; whole run {:.0?})",
        out.display(),
        started.elapsed()
    );
    Ok(())
}

/// A fresh K Envoy: the VM's linear memory after its first request, after 10k, and after
/// BENCH_MEMORY_REQUESTS.
fn memory_run(
    rows: &[Row],
    envoy_bin: &Path,
    upstream: &FastUpstream,
    tools: &Tools,
    settings: &Settings,
    pinning: Option<Pinning>,
) -> anyhow::Result<Vec<(u64, Option<u64>)>> {
    let row = rows.iter().find(|row| row.id == "K").context("no K row")?;
    eprintln!("bench: {} requests through a fresh K Envoy for its linear memory", settings.memory_requests);
    let envoy = BenchEnvoy::start(
        envoy_bin,
        "K-memory",
        &bootstrap::bootstrap(row, upstream.addr().port())?,
        pinning,
    )?;
    check(row, &envoy, upstream)?;
    let mut readings = vec![(envoy.requests()?, envoy.stat(MEMORY_GAUGE)?)];
    for target in [10_000, settings.memory_requests] {
        let count = target.saturating_sub(envoy.requests()?);
        tools.oha(
            &envoy.url(row.request.path),
            &row.request,
            settings.connections,
            None,
            Amount::Count(count),
        )?;
        readings.push((envoy.requests()?, envoy.stat(MEMORY_GAUGE)?));
    }
    Ok(readings)
}

/// One request through the row answers as the row means it to: 200, the AI answer translated (and the
/// translated request one the Anthropic mock accepts), and credentials actually required where rows check them.
fn check(row: &Row, envoy: &BenchEnvoy, upstream: &FastUpstream) -> anyhow::Result<()> {
    let agent = tollgate_harness::envoy::http_client();
    let send = |with_headers: bool| -> anyhow::Result<(u16, String)> {
        let url = envoy.url(row.request.path);
        let headers = if with_headers { row.request.headers.as_slice() } else { &[] };
        let mut response = if row.request.method == "POST" {
            let request = headers.iter().fold(agent.post(&url), |r, (k, v)| r.header(k, v));
            request.send(&row.request.body[..])?
        } else {
            headers.iter().fold(agent.get(&url), |r, (k, v)| r.header(k, v)).call()?
        };
        Ok((response.status().as_u16(), response.body_mut().read_to_string()?))
    };
    let (status, body) = send(true)?;
    ensure!(status == 200, "got {status}: {body}");
    match row.kind {
        Kind::Ai => {
            ensure!(
                body.contains("chat.completion.chunk") && body.contains("data: [DONE]"),
                "not OpenAI chunks: {body}"
            );
            let sent = upstream.last_post();
            let translated = tollgate_harness::upstream::ReceivedRequest {
                method: "POST".into(),
                path: sent.path.clone(),
                headers: sent.headers,
                body: sent.body,
            };
            let mock = tollgate_harness::mock_llm::MockLlm::new(
                tollgate_harness::mock_llm::ProviderKind::Anthropic,
                rows::PROVIDER_KEY,
            );
            match mock.answer(&translated) {
                tollgate_harness::upstream::Reply::Stream { status: 200, .. } => {}
                other => {
                    anyhow::bail!("the Anthropic mock refuses what Tollgate sent to {}: {other:?}", sent.path)
                }
            }
        }
        Kind::AiPassThrough => {
            ensure!(body.contains("event: message_start"), "not the Anthropic stream: {body}")
        }
        Kind::Plain if matches!(row.id, "N-K" | "N-J" | "K0" | "K" | "J") => {
            let (status, _) = send(false)?;
            ensure!(matches!(status, 401 | 403), "a request without credentials got {status}");
        }
        Kind::Plain => {}
    }
    Ok(())
}

/// Builds the T row's module from `test-harness/trivial-filter` (release, wasm32-wasip1).
fn build_trivial_filter() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1", "-p", "tollgate-bench-trivial"])
        .current_dir(tollgate_harness::repo_root())
        .status()
        .context("running cargo build for the trivial filter")?;
    ensure!(status.success(), "building tollgate-bench-trivial failed ({status})");
    let module = target_dir().join("wasm32-wasip1/release/tollgate_bench_trivial.wasm");
    ensure!(module.is_file(), "{} was not built", module.display());
    Ok(module)
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| tollgate_harness::repo_root().join("target"), PathBuf::from)
}

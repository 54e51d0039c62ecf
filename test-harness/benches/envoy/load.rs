//! The load generators, run on the load core: `wrk` (Debian) at saturation, with a Lua script that sends the
//! row's request and prints exact percentiles; `oha` (crates.io) at a fixed rate, with latency correction, so
//! a stall counts against every request that should have been sent during it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::launcher::Pinning;
use crate::rows::Request;

/// One run's result. Latencies in µs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests: u64,
    /// µs of CPU time Envoy used per request during the run, when measured.
    pub cpu_us: Option<f64>,
}

pub struct Tools {
    pub wrk: PathBuf,
    pub oha: PathBuf,
    pub pinning: Option<Pinning>,
    /// Scripts and bodies, one per row.
    dir: tempfile::TempDir,
}

impl Tools {
    /// `local_oha`: where `./build.sh bench` installs oha, tried after `PATH`.
    pub fn find(pinning: Option<Pinning>, local_oha: PathBuf) -> anyhow::Result<Self> {
        let wrk = which("wrk", None).context("wrk not found: apt-get install wrk (./build.sh bench does)")?;
        let local = local_oha;
        let oha =
            std::env::var_os("OHA_BIN").map(PathBuf::from).or_else(|| which("oha", Some(local))).context(
                "oha not found: cargo install oha --locked --root target/bench-tools (./build.sh bench does)",
            )?;
        Ok(Tools {
            wrk,
            oha,
            pinning,
            dir: tempfile::Builder::new().prefix("tollgate-bench-load-").tempdir()?,
        })
    }

    pub fn oha_version(&self) -> String {
        Command::new(&self.oha)
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// `connections` connections as fast as they go for `duration`.
    pub fn wrk(
        &self,
        url: &str,
        request: &Request,
        connections: u32,
        duration: Duration,
    ) -> anyhow::Result<Sample> {
        let script = self.wrk_script(request)?;
        let output = Pinning::command(self.pinning, |p| p.load_core, &self.wrk)
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{}s", duration.as_secs().max(1)),
                "--timeout",
                "10s",
            ])
            .arg("-s")
            .arg(&script)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .context("running wrk")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().find_map(|l| l.strip_prefix("BENCH ")).with_context(|| {
            format!(
                "wrk printed no result ({}):\n{text}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        let result: Value = serde_json::from_str(line)?;
        let field = |name: &str| result.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN);
        if field("failed") > 0.0 {
            bail!(
                "wrk against {url}: {} of {} requests failed (status >= 400 or socket errors)",
                field("failed"),
                field("requests")
            );
        }
        Ok(Sample {
            rps: field("requests") / (field("duration_us") / 1e6),
            p50_us: field("p50_us"),
            p99_us: field("p99_us"),
            requests: field("requests") as u64,
            cpu_us: None,
        })
    }

    /// `rate` requests a second over `connections` connections for `duration`, or exactly `count` requests as
    /// fast as they go when `rate` is `None`.
    pub fn oha(
        &self,
        url: &str,
        request: &Request,
        connections: u32,
        rate: Option<f64>,
        amount: Amount,
    ) -> anyhow::Result<Sample> {
        let body = self.body_file(request)?;
        let mut command = Pinning::command(self.pinning, |p| p.load_core, &self.oha);
        command.args([
            "--no-tui",
            "--output-format",
            "json",
            "-c",
            &connections.to_string(),
            "-m",
            request.method,
        ]);
        match amount {
            Amount::For(duration) => command.args(["-z", &format!("{}s", duration.as_secs().max(1))]),
            Amount::Count(count) => command.args(["-n", &count.to_string()]),
        };
        if let Some(rate) = rate {
            command.args(["-q", &format!("{rate:.0}"), "--latency-correction"]);
        }
        for (name, value) in &request.headers {
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        if !request.body.is_empty() {
            command.arg("-D").arg(&body);
        }
        let output = command.arg(url).stdin(Stdio::null()).output().context("running oha")?;
        let result: Value = serde_json::from_slice(&output.stdout).with_context(|| {
            format!("oha printed no JSON ({}): {}", output.status, String::from_utf8_lossy(&output.stderr))
        })?;
        let ok = result.pointer("/statusCodeDistribution/200").and_then(Value::as_u64).unwrap_or(0);
        let errors = result.get("errorDistribution").and_then(Value::as_object).map_or(0, |e| e.len());
        let rps = result.pointer("/summary/requestsPerSec").and_then(Value::as_f64).unwrap_or(f64::NAN);
        let seconds = |pointer: &str| result.pointer(pointer).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let answered: u64 = result
            .get("statusCodeDistribution")
            .and_then(Value::as_object)
            .map_or(0, |codes| codes.values().filter_map(Value::as_u64).sum());
        if answered != ok || (errors > 0 && matches!(amount, Amount::Count(_))) {
            bail!(
                "oha against {url}: {ok} of {answered} answers were 200; errors {}",
                result.get("errorDistribution").unwrap_or(&Value::Null)
            );
        }
        Ok(Sample {
            rps,
            p50_us: seconds("/latencyPercentiles/p50") * 1e6,
            p99_us: seconds("/latencyPercentiles/p99") * 1e6,
            requests: ok,
            cpu_us: None,
        })
    }

    fn body_file(&self, request: &Request) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join(format!("body-{}.bin", hash_name(request)));
        std::fs::write(&path, &request.body)?;
        Ok(path)
    }

    fn wrk_script(&self, request: &Request) -> anyhow::Result<PathBuf> {
        let body = self.body_file(request)?;
        let mut script = format!("wrk.method = {}\n", lua_string(request.method));
        for (name, value) in &request.headers {
            script += &format!("wrk.headers[{}] = {}\n", lua_string(name), lua_string(value));
        }
        if !request.body.is_empty() {
            script += &format!(
                "local file = assert(io.open({}, \"rb\"))\nwrk.body = file:read(\"*a\")\nfile:close()\n",
                lua_string(&body.display().to_string())
            );
        }
        // wrk counts a status of 400 and above in errors.status; latencies are in µs.
        script += r#"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"failed":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"#;
        let path = self.dir.path().join(format!("request-{}.lua", hash_name(request)));
        std::fs::write(&path, script)?;
        Ok(path)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Amount {
    For(Duration),
    Count(u64),
}

/// A file name for a request's files: the same request always gets the same one.
fn hash_name(request: &Request) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(request.method);
    hash.update(request.path);
    for (name, value) in &request.headers {
        hash.update(name);
        hash.update(value);
    }
    hash.update(&request.body);
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn lua_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

fn which(name: &str, fallback: Option<PathBuf>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(fallback)
        .find(|candidate| candidate.is_file())
}

//! Starts one row's Envoy: one worker (`--concurrency 1`) under `taskset -c 0`, its bootstrap and log in a
//! temp dir, listener and admin on port 0 read back from the admin API. Killed when dropped. Not the harness's
//! `EnvoyBuilder`: that one cannot wrap Envoy in taskset, nor take native filters, and adds an access log.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

/// Which cores Envoy and the rest get: `Some` on a machine with two or more.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    pub envoy_core: usize,
    pub load_core: usize,
}

impl Pinning {
    /// Pins this process (the upstream, and the load generators it starts) to the load core.
    pub fn pin_self(&self) -> anyhow::Result<()> {
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", &self.load_core.to_string(), &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running taskset (util-linux)")?;
        anyhow::ensure!(status.success(), "taskset -p failed: {status}");
        Ok(())
    }

    /// `program` wrapped to run on `core`.
    pub fn command(pinning: Option<Self>, core: impl Fn(Self) -> usize, program: &Path) -> Command {
        match pinning {
            Some(pinning) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(core(pinning).to_string()).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

pub struct BenchEnvoy {
    child: Child,
    dir: tempfile::TempDir,
    admin: SocketAddr,
    listener: SocketAddr,
    agent: ureq::Agent,
}

impl BenchEnvoy {
    pub fn start(
        binary: &Path,
        row: &str,
        bootstrap: &str,
        pinning: Option<Pinning>,
    ) -> anyhow::Result<Self> {
        let dir =
            tempfile::Builder::new().prefix(&format!("tollgate-bench-{}-", row.to_lowercase())).tempdir()?;
        let config = dir.path().join("envoy.yaml");
        let admin_path = dir.path().join("admin-address.txt");
        std::fs::write(&config, bootstrap)?;
        let log = File::create(dir.path().join("envoy.log"))?;
        let child = Pinning::command(pinning, |p| p.envoy_core, binary)
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", "1", "--use-dynamic-base-id", "-l", "warn", "--admin-address-path"])
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let agent = tollgate_harness::envoy::http_client();
        let mut envoy = BenchEnvoy {
            child,
            dir,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            agent,
        };
        envoy
            .wait_until_live(&admin_path)
            .with_context(|| format!("row {row}: Envoy did not start:\n{}", envoy.log_tail()))?;
        Ok(envoy)
    }

    fn wait_until_live(&mut self, admin_path: &Path) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Envoy exited ({status})");
            }
            if let Some(admin) = std::fs::read_to_string(admin_path).ok().and_then(|t| t.trim().parse().ok())
            {
                self.admin = admin;
                if self.admin_get("/ready").is_ok_and(|body| body.trim() == "LIVE") {
                    self.listener = SocketAddr::from((
                        [127, 0, 0, 1],
                        listener_port(&self.admin_get("/listeners?format=json")?)?,
                    ));
                    return Ok(());
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("not LIVE after 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listener)
    }

    pub fn admin_get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{path}", self.admin);
        let mut response = self.agent.get(&url).call().with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        anyhow::ensure!(status == 200, "GET {url}: {status} {body}");
        Ok(body)
    }

    /// One counter or gauge by its full admin name; `None` when Envoy has no such stat.
    pub fn stat(&self, name: &str) -> anyhow::Result<Option<u64>> {
        // The filter is a regex; the stat's last part (letters and underscores) needs no escaping in a URL.
        let last = name.rsplit('.').next().unwrap_or(name);
        let text = self.admin_get(&format!("/stats?filter={last}"))?;
        Ok(text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok()))
    }

    /// CPU time (user and system, every thread) Envoy has used so far, in µs, from `/proc`; `None` where
    /// there is no such file. On a machine shared with other work this is the cost that does not depend on
    /// how much of the core Envoy got.
    pub fn cpu_us(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command (which may hold spaces) in parentheses; utime and stime are the 14th and 15th.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks * 1e6 / clock_ticks_per_second())
    }

    /// Requests this Envoy's listener has taken so far.
    pub fn requests(&self) -> anyhow::Result<u64> {
        Ok(self.stat("http.ingress_http.downstream_rq_total")?.unwrap_or(0))
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines.get(lines.len().saturating_sub(30)..).unwrap_or_default().join("\n")
    }
}

impl Drop for BenchEnvoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listener_port(listeners_json: &str) -> anyhow::Result<u16> {
    let doc: Value = serde_json::from_str(listeners_json)?;
    let port = doc
        .get("listener_statuses")
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find(|l| l.get("name").and_then(Value::as_str) == Some("bench")))
        .and_then(|l| l.pointer("/local_address/socket_address/port_value"))
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("no port for listener `bench` in {listeners_json}"))?;
    Ok(u16::try_from(port)?)
}

/// `envoy --version`'s `1.40.0/Clean/RELEASE/BoringSSL` part.
pub fn envoy_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.split_whitespace().last().and_then(|v| v.split_once('/')).map(|(_, rest)| rest.to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn envoy_binary() -> anyhow::Result<PathBuf> {
    Ok(tollgate_harness::envoy::envoy_binary()?)
}

/// `getconf CLK_TCK`, the unit of `/proc/<pid>/stat` times: 100 on every usual Linux.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

//! Launchers for rate-limit tests against a real Envoy rate limit service: a throwaway `redis-server`
//! on a unix socket (`Redis`) and the `tollgate-rls` binary (`RateLimitService`) with a limits file.
//! Both are killed when dropped.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(10);
const RLS_READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// A `redis-server` of its own on a unix socket in a temporary directory, with persistence off.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` (`REDIS_SERVER`, else the one on `PATH`) and waits until it answers PING.
    pub fn start() -> anyhow::Result<Redis> {
        let binary = std::env::var_os("REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let dir =
            tempfile::Builder::new().prefix("tollgate-redis-").tempdir().context("temp dir for redis")?;
        let socket = dir.path().join("redis.sock");
        let log = dir.path().join("redis.log");
        let mut command = Command::new(&binary);
        command
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file(&log)?)
            .stderr(log_file(&log)?);
        let child = command.spawn().map_err(|err| {
            anyhow::anyhow!(
                "cannot run {}: {err}; install it with `apt-get install redis-server` (or run `./build.sh test`, \
                 which does), or point REDIS_SERVER at one",
                Path::new(&binary).display()
            )
        })?;
        let mut redis = Redis { child: Some(child), socket, dir };
        let deadline = Instant::now() + REDIS_READY_TIMEOUT;
        loop {
            if redis.ping() {
                return Ok(redis);
            }
            if let Some(child) = redis.child.as_mut() {
                if let Some(status) = child.try_wait().context("waiting for redis-server")? {
                    bail!("redis-server exited ({status}) before answering PING:\n{}", read_lossy(&log));
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server did not answer PING within {REDIS_READY_TIMEOUT:?}:\n{}",
                    read_lossy(&log)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// `redis+unix:///…/redis.sock`, the form limitador's Redis client takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether the server answers PING on its socket now.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Kills the server now (tests use it to make Redis go away under a running service).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            kill(child);
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `tollgate-rls` serving the limits it was given.
#[derive(Debug)]
pub struct RateLimitService {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl RateLimitService {
    /// Writes `limits` to a file, starts `binary --listen 127.0.0.1:0 --limits FILE --redis URL` and waits
    /// for its `listening on` line. `redis_url` may be `memory` to keep counters in the process.
    pub fn start(binary: &Path, redis_url: &str, limits: &serde_json::Value) -> anyhow::Result<Self> {
        let dir =
            tempfile::Builder::new().prefix("tollgate-rls-").tempdir().context("temp dir for the RLS")?;
        let limits_path = dir.path().join("limits.json");
        std::fs::write(&limits_path, limits.to_string()).context("writing the limits file")?;
        let out = dir.path().join("stdout.log");
        let err = dir.path().join("stderr.log");
        let mut command = Command::new(binary);
        command.args(["--listen", "127.0.0.1:0", "--limits"]).arg(&limits_path);
        if redis_url == "memory" {
            command.arg("--memory");
        } else {
            command.args(["--redis", redis_url]);
        }
        command.stdin(Stdio::null()).stdout(log_file(&out)?).stderr(log_file(&err)?);
        let child = command.spawn().with_context(|| format!("cannot run {}", binary.display()))?;
        let mut service =
            RateLimitService { child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], 0)), dir };
        let deadline = Instant::now() + RLS_READY_TIMEOUT;
        loop {
            let printed = read_lossy(&out);
            if let Some(line) = printed.lines().next().filter(|_| printed.contains('\n')) {
                let addr = line.strip_prefix("listening on ").and_then(|addr| addr.trim().parse().ok());
                match addr {
                    Some(addr) => {
                        service.addr = addr;
                        return Ok(service);
                    }
                    None => {
                        bail!("tollgate-rls printed {line:?}, not `listening on ADDR`:\n{}", read_lossy(&err))
                    }
                }
            }
            if let Some(child) = service.child.as_mut() {
                if let Some(status) = child.try_wait().context("waiting for tollgate-rls")? {
                    bail!("tollgate-rls exited ({status}) before listening:\n{}", read_lossy(&err));
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "tollgate-rls did not print `listening on` within {RLS_READY_TIMEOUT:?}:\n{}",
                    read_lossy(&err)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`, for a gRPC client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// What the service wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.path().join("stderr.log"))
    }

    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            kill(child);
        }
    }
}

impl Drop for RateLimitService {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_file(path: &Path) -> anyhow::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
}

/// SIGKILL and reap: tests want it gone now; errors mean it had already exited.
fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

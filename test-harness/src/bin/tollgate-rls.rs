//! `tollgate-rls --listen 127.0.0.1:0 --limits limits.json (--redis URL | --memory)`: a demo and test
//! Envoy rate limit service (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) whose
//! counters are fixed windows in Redis (shared by every instance on it) or in memory.
//!
//! Prints `listening on <ip>:<port>` once it accepts connections, then serves until killed. A bad limits
//! file or an unreachable Redis at start exits with status 2; Redis errors while serving answer
//! UNAVAILABLE, so the caller's fail-open/closed setting decides.

#[path = "tollgate_rls/limits.rs"]
mod limits;
#[path = "tollgate_rls/service.rs"]
mod service;
#[path = "tollgate_rls/store.rs"]
mod store;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::limits::LimitTable;
use crate::service::RlsService;
use crate::store::CounterStore;

/// How long start-up may wait for Redis before giving up (the client also has its own connect timeout).
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "tollgate-rls",
    about = "Envoy rate limit service with counters in Redis (for demos and tests)"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The limits file: {"limits":[{"domain","rule","max","seconds","by":[keys]}]}.
    #[arg(long)]
    limits: PathBuf,
    /// Redis URL for the counters: redis://host:port or redis+unix:///path/redis.sock.
    #[arg(long, conflicts_with = "memory", required_unless_present = "memory")]
    redis: Option<String>,
    /// Keep counters in this process instead of Redis.
    #[arg(long)]
    memory: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("tollgate-rls: {err:#}");
    ExitCode::from(2)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let limits = LimitTable::load(&args.limits)?;
    let store = match &args.redis {
        Some(url) => tokio::time::timeout(REDIS_CONNECT_TIMEOUT, CounterStore::redis(url))
            .await
            .map_err(|_| anyhow::anyhow!("redis {url}: no answer within {REDIS_CONNECT_TIMEOUT:?}"))??,
        None => CounterStore::memory(),
    };
    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("listener address")?;
    let count = limits.len();
    let service = RateLimitServiceServer::new(RlsService::new(limits, store));

    // The socket is bound and listening, so connections queue from here on even before serving starts.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush()).context("stdout")?;
    drop(stdout);
    eprintln!("tollgate-rls: {count} limit(s) from {}", args.limits.display());

    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
        .context("serving")
}

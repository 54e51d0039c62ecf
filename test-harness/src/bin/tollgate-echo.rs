//! `tollgate-echo [--port 9000] [--quiet]`: the demo's upstream. Answers every request with JSON describing
//! the request it received, so `curl` through Envoy shows exactly what the filter forwarded.

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use tollgate_harness::upstream::{EchoUpstream, Reply};

const USAGE: &str =
    "usage: tollgate-echo [--port PORT] [--quiet]   (listens on 127.0.0.1, default port 9000)";

fn main() -> anyhow::Result<()> {
    let mut port: u16 = 9000;
    let mut quiet = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" | "-p" => {
                let value = args.next().context(USAGE)?;
                port =
                    value.parse().with_context(|| format!("--port {value}: not a port number\n{USAGE}"))?;
            }
            "--quiet" | "-q" => quiet = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }

    let upstream = EchoUpstream::bind(SocketAddr::from(([127, 0, 0, 1], port)), move |request| {
        if !quiet {
            println!("{} {}", request.method, request.path);
        }
        Reply::Echo
    })
    .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!("tollgate-echo listening on {}", upstream.url());
    // The server runs on its own threads; this one only keeps the process (and the upstream) alive until killed.
    loop {
        std::thread::park();
    }
}

//! `tollgate-mock-llm --provider anthropic [--port 9100] [--key KEY] [--base-path /v1] [--quiet]`: one mock AI
//! provider on localhost, speaking that provider's wire format, for the demo and for poking at by hand.

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::EchoUpstream;

const USAGE: &str = "usage: tollgate-mock-llm --provider openai|azure|anthropic|gemini|mistral \
                     [--port PORT] [--key KEY] [--base-path PREFIX] [--quiet]   (127.0.0.1, default port 9100, key test-provider-key)";

fn main() -> anyhow::Result<()> {
    let mut port: u16 = 9100;
    let mut provider: Option<ProviderKind> = None;
    let mut key = "test-provider-key".to_owned();
    let mut base_path: Option<String> = None;
    let mut quiet = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--port" | "-p" => {
                let value = value()?;
                port =
                    value.parse().with_context(|| format!("--port {value}: not a port number\n{USAGE}"))?;
            }
            "--provider" => provider = Some(value()?.parse().map_err(anyhow::Error::msg)?),
            "--key" => key = value()?,
            "--base-path" => base_path = Some(value()?),
            "--quiet" | "-q" => quiet = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let provider = provider.context(USAGE)?;
    let mut mock = MockLlm::new(provider, &key);
    if let Some(prefix) = base_path {
        mock = mock.base_path(&prefix);
    }
    let upstream = EchoUpstream::bind(SocketAddr::from(([127, 0, 0, 1], port)), move |request| {
        if !quiet {
            println!("{} {}", request.method, request.path);
        }
        mock.answer(request)
    })
    .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!("tollgate-mock-llm ({provider:?}) listening on {}", upstream.url());
    // The server runs on its own threads; this one only keeps the process alive until killed.
    loop {
        std::thread::park();
    }
}

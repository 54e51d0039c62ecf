//! `tollgate-replay`: try a Tollgate configuration offline, in the same wasm module Envoy loads.
//!
//!   tollgate-replay check [--wasm W] CONFIG.json...       compile configs as on_configure would
//!   tollgate-replay run [--wasm W] --config C --scenario S    replay one request; prints JSON
//!   tollgate-replay keygen                                 a new API key; prints JSON with its id and SHA-256
//!   tollgate-replay publish [--wasm W] --dir D [--version V] CONFIG.json
//!                                                          check CONFIG, then hand module + CONFIG to the
//!                                                          Envoy whose ECDS watches D (hot swap)
//!
//! Exit status: 0 on success, 2 when a configuration is rejected, 1 on any other error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate_harness::replay::{self, ReplayError};

#[derive(Parser)]
#[command(version, about = "Replay requests through tollgate.wasm without Envoy")]
struct Cli {
    /// The filter module (default: dist/tollgate.wasm, or $TOLLGATE_WASM).
    #[arg(long, global = true)]
    wasm: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that each configuration is accepted by the filter.
    Check {
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// Replay one scenario and print what the filter did, as JSON.
    Run {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        scenario: PathBuf,
    },
    /// Generate an API key: give `key` to the client, put `id` and `sha256` in `auth.consumers[].api_keys`.
    Keygen,
    /// Check a configuration, then publish it with the module to the directory an Envoy's file-based ECDS
    /// watches: Envoy swaps to the new version without dropping requests.
    Publish {
        /// The directory the bootstrap's `path_config_source` watches (e.g. envoy/ecds/live).
        #[arg(long)]
        dir: PathBuf,
        /// A name for this version (default: seconds since the epoch).
        #[arg(long)]
        version: Option<String>,
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let wasm = cli.wasm.unwrap_or_else(tollgate_harness::tollgate_wasm);
    match cli.command {
        Command::Check { configs } => check(&wasm, &configs),
        Command::Run { config, scenario } => match run(&wasm, &config, &scenario) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&config, &e),
        },
        Command::Keygen => keygen(),
        Command::Publish { dir, version, config } => publish(&wasm, &dir, version, &config),
    }
}

fn publish(wasm: &Path, dir: &Path, version: Option<String>, config: &Path) -> ExitCode {
    let checked = read(config).and_then(|bytes| replay::check(wasm, &bytes).map(|()| bytes));
    let config_bytes = match checked {
        Ok(bytes) => bytes,
        Err(e) => return fail(config, &e),
    };
    let version = version.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        format!("t{}", now.map(|d| d.as_secs()).unwrap_or_default())
    });
    let published = std::fs::read(wasm).and_then(|module| {
        let config_json = String::from_utf8_lossy(&config_bytes);
        tollgate_harness::ecds::publish(dir, &module, &config_json, &version)
    });
    match published {
        Ok(p) => {
            println!("published {} ({}, sha256 {})", p.version, p.module.display(), p.sha256);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot publish to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn keygen() -> ExitCode {
    match tollgate_auth::keygen() {
        Ok(generated) => {
            let out =
                serde_json::json!({"key": generated.key, "id": generated.id, "sha256": generated.sha256});
            println!("{out}");
            eprintln!("add to a consumer's \"api_keys\" in the auth config: {}", generated.config_entry());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot read random bytes: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(wasm: &Path, configs: &[PathBuf]) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in configs {
        match read(path).and_then(|bytes| replay::check(wasm, &bytes)) {
            Ok(()) => println!("ok: {}", path.display()),
            Err(e) => status = fail(path, &e),
        }
    }
    status
}

fn run(wasm: &Path, config: &Path, scenario: &Path) -> Result<String, ReplayError> {
    let scenario = replay::parse_scenario(&read(scenario)?)?;
    let report = replay::run(wasm, &read(config)?, scenario)?;
    serde_json::to_string_pretty(&report).map_err(|e| ReplayError::Input(e.to_string()))
}

fn read(path: &Path) -> Result<Vec<u8>, ReplayError> {
    std::fs::read(path).map_err(|e| ReplayError::Input(format!("cannot read {}: {e}", path.display())))
}

fn fail(config: &Path, error: &ReplayError) -> ExitCode {
    eprintln!("{}: {error}", config.display());
    match error {
        ReplayError::ConfigRejected { .. } => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

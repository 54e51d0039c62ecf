//! Runs the official provider SDKs (Python, from PyPI, unmodified) against mocks and Envoy: the interpreter of
//! the project virtualenv that `./build.sh test` fills, and the client scripts in `test-harness/python/`, each of
//! which prints what its SDK parsed as one JSON document.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};
use serde_json::Value;

/// `<repo>/.venv/bin/python`; `TOLLGATE_PYTHON` overrides.
pub fn interpreter() -> PathBuf {
    std::env::var_os("TOLLGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join(".venv/bin/python"))
}

/// A client script in `test-harness/python/`.
pub fn script(name: &str) -> PathBuf {
    crate::repo_root().join("test-harness/python").join(name)
}

/// Runs `script` with `args` and parses its stdout as JSON; a failure carries the script's stderr.
pub fn run(name: &str, args: &[&str]) -> anyhow::Result<Value> {
    run_with_env(name, args, &[])
}

/// [`run`] with extra environment variables.
pub fn run_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Value> {
    let python = interpreter();
    if !python.exists() {
        bail!(
            "no Python at {}: run ./build.sh test (it installs the openai and anthropic SDKs into .venv), \
             or set TOLLGATE_PYTHON",
            python.display()
        );
    }
    let script = script(name);
    let output = Command::new(&python)
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        // The SDKs read these; a developer's own settings must not steer the tests.
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env("NO_PROXY", "*")
        .output()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{name} {args:?} failed ({}):\n{stderr}\n{stdout}", output.status);
    }
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("{name} {args:?} printed no JSON:\n{stdout}\nstderr:\n{stderr}"))
}

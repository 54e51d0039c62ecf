//! Test and replay tooling for Tollgate: a wasmtime-based proxy-wasm host that runs `dist/tollgate.wasm`
//! with no proxy (`host`), a launcher for a real Envoy (`envoy`), an upstream that echoes what it received
//! (`upstream`), mock AI providers speaking each provider's wire format (`mock_llm`), a runner for the
//! official provider SDKs' Python client scripts (`python`), and launchers for `redis-server` and the
//! `tollgate-rls` Envoy rate limit service (`rls`). Owns no config section; it feeds the filter's JSON
//! configuration as given.

pub mod ecds;
pub mod envoy;
pub mod host;
pub mod mock_llm;
pub mod python;
pub mod replay;
pub mod rls;
pub mod upstream;

use std::path::PathBuf;

/// The repository root (this crate lives in `test-harness/`).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `dist/tollgate.wasm`, the module `./build.sh` produces; `TOLLGATE_WASM` overrides.
pub fn tollgate_wasm() -> PathBuf {
    std::env::var_os("TOLLGATE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist/tollgate.wasm"))
}

/// `dist/tollgate-probe.wasm`, the host-function probe module `./build.sh` produces.
pub fn probe_wasm() -> PathBuf {
    repo_root().join("dist/tollgate-probe.wasm")
}

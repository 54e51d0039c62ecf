//! Why a host operation failed. Every variant that involves the guest carries its recent log lines,
//! so a failing test shows what the filter said before it went wrong.

use std::path::PathBuf;

/// Errors from loading, starting and driving a VM.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{} not found: run ./build.sh first", path.display())]
    WasmNotFound { path: PathBuf },

    #[error("cannot read or compile {}: {message}", path.display())]
    Compile { path: PathBuf, message: String },

    #[error("the module imports functions this host does not provide: {}", imports.join(", "))]
    UnknownImports { imports: Vec<String> },

    #[error("the module does not export proxy_abi_version_0_2_1 (exports: {exports}); only ABI 0.2.1 is supported")]
    AbiVersion { exports: String },

    #[error("instantiating the module failed: {0}")]
    Instantiate(String),

    #[error("guest trapped in {callback}: {trap}\n--- last guest log lines ---\n{logs}")]
    Trap { callback: String, trap: String, logs: String },

    #[error("proxy_on_vm_start returned false (VM configuration rejected)\n--- guest log lines ---\n{logs}")]
    VmStartRejected { logs: String },

    #[error(
        "proxy_on_configure returned false (plugin configuration rejected)\n--- guest log lines ---\n{logs}"
    )]
    ConfigRejected { logs: String },

    #[error("the VM is unusable after an earlier trap: {0}")]
    Dead(String),

    #[error("stream {context_id} did not finish: {reason}\n--- last guest log lines ---\n{logs}")]
    Stalled { context_id: u32, reason: String, logs: String },

    #[error("{0}")]
    Usage(String),
}

/// Results of host operations.
pub type HostResult<T> = Result<T, HostError>;

//! Where a test Envoy runs: a child process of the test (the default), or a Docker container started with
//! `testcontainers` from the same Envoy binary. `TOLLGATE_ENVOY_BACKEND=process|container` picks one for
//! every Envoy a test run starts, so the end-to-end suite runs unchanged on either;
//! [`EnvoyBuilder::backend`](super::EnvoyBuilder::backend) forces one for a single Envoy.

use std::path::Path;
use std::process::ExitStatus;

use super::container::{self, EnvoyContainer};
use super::process::EnvoyProcess;
use super::{read_log, StartError};

/// The variable that picks the backend for every Envoy that does not force one.
pub const BACKEND_VAR: &str = "TOLLGATE_ENVOY_BACKEND";

/// Where Envoy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// A child process of the test, `ENVOY_BIN` or the `.venv` one.
    #[default]
    Process,
    /// A Docker container (host network, the temp dir and module mounted at their own paths), from an image
    /// built locally from the process backend's binary, or `TOLLGATE_ENVOY_IMAGE`.
    Container,
}

impl Backend {
    /// `TOLLGATE_ENVOY_BACKEND`, defaulting to [`Backend::Process`]; an unknown value is an error rather
    /// than a quiet fallback, so a typo cannot make a CI pass test the wrong backend.
    pub fn from_env() -> Result<Backend, StartError> {
        match std::env::var(BACKEND_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(Backend::Process),
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err(StartError::UnknownBackend { value: value.to_string_lossy().into_owned() })
            }
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = StartError;

    fn from_str(value: &str) -> Result<Backend, StartError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "process" => Ok(Backend::Process),
            "container" | "docker" => Ok(Backend::Container),
            _ => Err(StartError::UnknownBackend { value: value.to_owned() }),
        }
    }
}

/// Whether `CI` says this is a CI run (`true`, `1`, `yes`; anything else, or unset, is not).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
        .unwrap_or(false)
}

/// Whether a test that needs the container backend can run here. `Ok(true)` when a Docker engine answers.
/// When none does, in CI that is an error ([`StartError::BackendUnavailable`]); elsewhere the reason goes
/// to stderr as a skip message and the answer is `Ok(false)`, so the test can return early and pass:
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// if !tollgate_harness::envoy::container_backend_available("my_test")? {
///     return Ok(());
/// }
/// # Ok(()) }
/// ```
pub fn container_backend_available(test: &str) -> Result<bool, StartError> {
    match container::engine() {
        Ok(()) => Ok(true),
        Err(err @ StartError::BackendUnavailable { .. }) if !in_ci() => {
            eprintln!("SKIPPED {test}: {err}");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// A started Envoy, whichever backend runs it.
pub(crate) enum Running {
    Process(EnvoyProcess),
    Container(Box<EnvoyContainer>),
}

impl Running {
    /// The process's pid; for a container, the host pid of Envoy, which is the container's first process.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Running::Process(process) => process.pid(),
            Running::Container(container) => container.pid(),
        }
    }

    /// `Some(status)` once Envoy has exited (for a container, its exit code as a status).
    pub(crate) fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Running::Process(process) => process.try_wait(),
            Running::Container(container) => container.try_wait(),
        }
    }

    /// The container's id, for the container backend.
    pub(crate) fn container_id(&self) -> Option<&str> {
        match self {
            Running::Process(_) => None,
            Running::Container(container) => Some(container.id()),
        }
    }

    /// What Envoy has logged so far: the log file, or for a container, its output as Docker has it (the
    /// file gets a copy through a stream that may lag behind, so a test could miss a line it just caused).
    pub(crate) fn log(&self, log_path: &Path) -> String {
        match self {
            Running::Container(container) => match container.output() {
                output if output.trim().is_empty() => read_log(log_path),
                output => output,
            },
            Running::Process(_) => read_log(log_path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_a_typo_is_an_error() {
        assert_eq!("process".parse::<Backend>().unwrap(), Backend::Process);
        assert_eq!(" Container ".parse::<Backend>().unwrap(), Backend::Container);
        assert_eq!("".parse::<Backend>().unwrap(), Backend::Process);
        assert!(matches!("contianer".parse::<Backend>(), Err(StartError::UnknownBackend { .. })));
    }
}

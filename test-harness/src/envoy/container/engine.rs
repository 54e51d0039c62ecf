//! Finding the Docker engine, once per test process, and talking to it through the `docker` CLI for what
//! `testcontainers` does not do (the engine check, image builds, a container's pid).
//!
//! `testcontainers` speaks the Docker API version of the `bollard` it is built with (1.53) and does not
//! negotiate; an engine that only speaks an older one (Debian 12's Docker 20.10 speaks 1.41) refuses every
//! call. The CLI negotiates, so it asks the engine its version, and an older engine is reached through
//! [`api_shim`](super::api_shim), which rewrites the version in each request path.

use std::ffi::OsString;
use std::process::{Command, Output};
use std::sync::OnceLock;

use testcontainers::bollard::API_DEFAULT_VERSION;

use super::api_shim;
use crate::envoy::StartError;

/// Where the engine is, as the CLI should be told, once it answered.
struct Engine {
    /// The caller's `DOCKER_HOST` (`None`: unset), which the CLI keeps using even after `testcontainers`
    /// has been pointed at the shim.
    docker_host: Option<OsString>,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// `Ok` once a Docker engine answers and `testcontainers` can speak to it; checked once per process.
pub(crate) fn engine() -> Result<(), StartError> {
    match ENGINE.get_or_init(find_engine) {
        Ok(_) => Ok(()),
        Err(reason) => Err(StartError::BackendUnavailable { reason: reason.clone() }),
    }
}

/// `docker ARGS`, aimed at the engine the caller configured (never at the shim).
pub(crate) fn docker(args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args);
    match ENGINE.get().and_then(|engine| engine.as_ref().ok()).and_then(|engine| engine.docker_host.clone()) {
        Some(host) => command.env("DOCKER_HOST", host),
        None => command.env_remove("DOCKER_HOST"),
    };
    command
}

/// Runs `docker ARGS`, returning stdout, or the command and its stderr as the error.
pub(crate) fn docker_output(args: &[&str]) -> Result<String, String> {
    let output =
        docker(args).output().map_err(|err| format!("running `docker {}`: {err}", args.join(" ")))?;
    output_text(args, output)
}

fn output_text(args: &[&str], output: Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The host pid of a running container's first process.
pub(crate) fn container_pid(id: &str) -> Option<u32> {
    docker_output(&["inspect", "--format", "{{.State.Pid}}", id])
        .ok()
        .and_then(|pid| pid.parse().ok())
        .filter(|pid| *pid != 0)
}

fn find_engine() -> Result<Engine, String> {
    let docker_host = std::env::var_os("DOCKER_HOST").filter(|host| !host.is_empty());
    let args = ["version", "--format", "{{.Server.APIVersion}}"];
    let output = Command::new("docker").args(args).output().map_err(|err| {
        format!("the `docker` CLI did not run ({err}); install Docker, or use TOLLGATE_ENVOY_BACKEND=process")
    })?;
    let server_api = output_text(&args, output).map_err(|err| {
        format!("no Docker engine answers: {err}; start one, or use TOLLGATE_ENVOY_BACKEND=process")
    })?;
    let client = (API_DEFAULT_VERSION.major_version, API_DEFAULT_VERSION.minor_version);
    let server = parse_api_version(&server_api).ok_or_else(|| {
        format!("the Docker engine reports API version {server_api:?}, which is not MAJOR.MINOR")
    })?;
    if server < client {
        let engine_socket = match docker_host.as_ref().map(|host| host.to_string_lossy()) {
            None => "/var/run/docker.sock".to_owned(),
            Some(host) => match host.strip_prefix("unix://") {
                Some(path) => path.to_owned(),
                None => {
                    return Err(format!(
                    "the Docker engine at DOCKER_HOST={host} speaks API {server_api}, older than the {}.{} \
                         testcontainers speaks, and only a unix:// engine can be bridged",
                    client.0, client.1
                ))
                }
            },
        };
        let from = format!("/v{}.{}/", client.0, client.1);
        let to = format!("/v{server_api}/");
        let shim = api_shim::start(engine_socket.into(), from.into_bytes(), to.into_bytes())
            .map_err(|err| format!("starting the Docker API version shim: {err}"))?;
        // Before the first testcontainers call (this runs inside `engine()`, which every start goes through):
        // DOCKER_HOST is the only way to aim testcontainers at a socket. Set once per process.
        std::env::set_var("DOCKER_HOST", format!("unix://{}", shim.display()));
    }
    Ok(Engine { docker_host })
}

fn parse_api_version(text: &str) -> Option<(usize, usize)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_as_numbers() {
        assert_eq!(parse_api_version("1.41\n"), Some((1, 41)));
        assert!(parse_api_version("1.9").unwrap() < parse_api_version("1.41").unwrap());
        assert_eq!(parse_api_version("v1"), None);
    }
}

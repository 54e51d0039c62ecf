//! The launcher's container backend: Envoy really runs in a Docker container (`docker ps` shows it while
//! the handle lives, and it is gone once the handle drops), with the module and temp dir mounted, on the
//! host's network. Skipped with a message when no Docker engine answers, except in CI, where that fails.
//! The rest of the end-to-end suite runs on this backend too, with TOLLGATE_ENVOY_BACKEND=container.

use std::process::Command;

use anyhow::{bail, Result};
use tollgate_harness::envoy::{container_backend_available, http_client, Backend, Envoy, StartError};
use tollgate_harness::upstream::EchoUpstream;

/// `docker ps` (running, or with `-a` all) filtered to one container id: its id, image and state.
fn docker_ps(id: &str, all: bool) -> Result<String> {
    let mut command = Command::new("docker");
    command.arg("ps");
    if all {
        command.arg("--all");
    }
    let output = command
        .args(["--no-trunc", "--filter", &format!("id={id}"), "--format", "{{.ID}} {{.Image}} {{.State}}"])
        .output()?;
    if !output.status.success() {
        bail!("docker ps: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

#[test]
fn envoy_runs_in_a_container_that_is_removed_on_drop() -> Result<()> {
    if !container_backend_available("envoy_runs_in_a_container_that_is_removed_on_drop")? {
        return Ok(());
    }
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder(r#"{"upstream_headers":{"set":{"x-tollgate":"on"}}}"#)
        .backend(Backend::Container)
        .upstream(upstream.addr())
        .start()?;
    let id = envoy.container_id().expect("a container backend Envoy has a container").to_owned();

    let running = docker_ps(&id, false)?;
    assert!(running.starts_with(&id) && running.ends_with("running"), "docker ps shows {running:?}");
    // Envoy is the container's first process, and its host pid is what `pid()` reports.
    assert_ne!(envoy.pid(), 0);
    assert!(std::path::Path::new(&format!("/proc/{}", envoy.pid())).exists());
    assert!(envoy.is_running());

    // The mounted module filters a request to an upstream on the host's loopback.
    let response = http_client().get(format!("{}/in/a/container", envoy.base_url())).call()?;
    assert_eq!(response.status().as_u16(), 200);
    let received = upstream.received();
    assert_eq!(received.last().and_then(|r| r.header("x-tollgate")), Some("on"), "{received:?}");
    // Envoy's log reaches the temp dir, written by Envoy as the test's user.
    assert!(envoy.log().contains("starting main dispatch loop"), "{}", envoy.log());

    let pid = envoy.pid();
    drop(envoy);
    assert_eq!(docker_ps(&id, true)?, "", "container {id} outlived its handle");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "Envoy {pid} outlived its container");
    Ok(())
}

#[test]
fn a_refused_start_on_the_container_backend_carries_envoy_output() -> Result<()> {
    if !container_backend_available("a_refused_start_on_the_container_backend_carries_envoy_output")? {
        return Ok(());
    }
    match Envoy::builder("{}").without_filter().backend(Backend::Container).arg("--no-such-flag").start() {
        Ok(envoy) => bail!("Envoy started: {envoy:?}"),
        Err(err @ StartError::Exited { .. }) => {
            assert!(err.to_string().contains("no-such-flag"), "{err}");
            Ok(())
        }
        Err(other) => Err(other.into()),
    }
}

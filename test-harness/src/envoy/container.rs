//! The container backend: Envoy in a Docker container, started and removed with `testcontainers`.
//!
//! The container shares the host's network (`--network host`), so Envoy binds `127.0.0.1:0` and reaches the
//! tests' upstreams on loopback exactly as the process does. The Envoy's temp dir, the module and any ECDS
//! directory are bind-mounted at their own absolute paths, so the rendered bootstrap works unchanged, and
//! Envoy runs as the owner of the temp dir, so what it writes there (log, access log, admin address) is the
//! test's to read. Its stdout and stderr are streamed into the Envoy's log file, which the process backend
//! writes to directly. Dropping the handle removes the container (`docker rm -f`).

mod api_shim;
mod engine;
mod image;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Mutex, PoisonError};

use testcontainers::core::logs::LogFrame;
use testcontainers::core::{AccessMode, Mount};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, ImageExt};

pub(crate) use engine::engine;

use super::StartError;

/// Where Envoy is in both the harness's image and the official `envoyproxy/envoy` one; it is the entrypoint
/// (the official image's own entrypoint script would switch users).
const ENVOY_IN_IMAGE: &str = "/usr/local/bin/envoy";

/// What to run, with every path already absolute.
pub(crate) struct ContainerSpec<'a> {
    pub name: &'a str,
    /// Envoy's arguments, after the binary.
    pub args: Vec<String>,
    /// The Envoy's temp dir: mounted read-write, and whose owner Envoy runs as.
    pub dir: &'a Path,
    /// Where Envoy's stdout and stderr go.
    pub log: File,
    /// Further paths (the module, an ECDS directory), mounted at the same path.
    pub read_only: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
}

pub(crate) struct EnvoyContainer {
    container: Container<GenericImage>,
    pid: u32,
}

impl EnvoyContainer {
    pub(crate) fn start(spec: ContainerSpec<'_>) -> Result<EnvoyContainer, StartError> {
        engine()?;
        let image = image::envoy_image()?;
        let (name, tag) = split_reference(&image);
        let owner = std::fs::metadata(spec.dir)
            .map_err(super::io_error(format!("reading the owner of {}", spec.dir.display())))?;
        let mut request = GenericImage::new(name, tag)
            .with_entrypoint(ENVOY_IN_IMAGE)
            .with_network("host")
            .with_user(format!("{}:{}", owner.uid(), owner.gid()))
            .with_container_name(spec.name)
            .with_cmd(spec.args)
            .with_log_consumer(log_writer(spec.log))
            .with_mount(bind(spec.dir, AccessMode::ReadWrite)?);
        for path in &spec.read_only {
            request = request.with_mount(bind(path, AccessMode::ReadOnly)?);
        }
        for path in &spec.read_write {
            request = request.with_mount(bind(path, AccessMode::ReadWrite)?);
        }
        let container = request
            .start()
            .map_err(|err| StartError::Container(format!("starting a container from {image}: {err}")))?;
        // An Envoy that exits at once (a refused bootstrap) has no pid any more; 0 then, as for no process.
        let pid = engine::container_pid(container.id()).unwrap_or(0);
        Ok(EnvoyContainer { container, pid })
    }

    pub(crate) fn id(&self) -> &str {
        self.container.id()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(status)` once the container has stopped, its exit code as a wait status.
    pub(crate) fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        match self.container.exit_code() {
            Ok(None) => Ok(None),
            Ok(Some(code)) => {
                let code = i32::try_from(code).unwrap_or(i32::MAX) & 0xff;
                Ok(Some(ExitStatus::from_raw(code << 8)))
            }
            Err(err) => Err(std::io::Error::other(format!("inspecting container {}: {err}", self.id()))),
        }
    }

    /// The container's stdout and stderr as Docker has them: up to date, where the streamed copy in the log
    /// file may lag behind.
    pub(crate) fn output(&self) -> String {
        let mut output = self.container.stdout_to_vec().unwrap_or_default();
        output.extend(self.container.stderr_to_vec().unwrap_or_default());
        String::from_utf8_lossy(&output).into_owned()
    }
}

/// Appends every stdout and stderr frame to `log`, as the process backend's redirected output would.
fn log_writer(log: File) -> impl Fn(&LogFrame) + Send + Sync + 'static {
    let log = Mutex::new(log);
    move |frame| {
        let bytes = match frame {
            LogFrame::StdOut(bytes) | LogFrame::StdErr(bytes) => bytes,
        };
        // A log write that fails leaves a shorter log; the test reading it will say what is missing.
        let _ = log.lock().unwrap_or_else(PoisonError::into_inner).write_all(bytes);
    }
}

fn bind(path: &Path, mode: AccessMode) -> Result<Mount, StartError> {
    let path = path.to_str().ok_or_else(|| {
        StartError::Container(format!("{} is not UTF-8, so it cannot be mounted", path.display()))
    })?;
    Ok(Mount::bind_mount(path, path).with_access_mode(mode))
}

/// `registry:5000/envoyproxy/envoy:v1.40.0` into name and tag; no tag means `latest`.
fn split_reference(image: &str) -> (&str, &str) {
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image.rfind(':') {
        Some(colon) if colon > name_start => {
            (image.get(..colon).unwrap_or(image), image.get(colon + 1..).unwrap_or("latest"))
        }
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_at_the_tag_colon_not_a_registry_port() {
        assert_eq!(split_reference("envoyproxy/envoy:v1.40.0"), ("envoyproxy/envoy", "v1.40.0"));
        assert_eq!(split_reference("localhost:5000/envoy"), ("localhost:5000/envoy", "latest"));
        assert_eq!(split_reference("localhost:5000/envoy:1.40"), ("localhost:5000/envoy", "1.40"));
        assert_eq!(split_reference("tollgate-envoy"), ("tollgate-envoy", "latest"));
    }
}

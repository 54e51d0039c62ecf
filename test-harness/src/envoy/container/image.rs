//! The image the container backend runs: `TOLLGATE_ENVOY_IMAGE` when set (`envoyproxy/envoy:v1.40.0` where a
//! registry is reachable), else one built here from the binary the process backend runs, so both backends
//! run the same Envoy and no registry is needed.
//!
//! The built image is `FROM scratch`: the binary at `/usr/local/bin/envoy`, the shared libraries `ldd` lists
//! and the dynamic loader at their host paths, and a world-writable `/tmp`. Its tag carries Envoy's version
//! and a hash of the binary and this recipe, so it is built once per binary, not once per run; within a
//! process a `OnceLock` builds it once however many tests start Envoys at the same moment. Two test
//! processes building the same tag at once both produce the same image, so they need no lock between them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::engine::{docker, docker_output};
use crate::envoy::{envoy_binary, StartError};

/// Overrides the image (then nothing is built).
pub const IMAGE_VAR: &str = "TOLLGATE_ENVOY_IMAGE";
const REPOSITORY: &str = "tollgate-envoy";
/// Part of the tag's hash: changing how the image is laid out must not reuse images laid out the old way.
const RECIPE: &str = "scratch; /usr/local/bin/envoy; ldd libraries at host paths; /tmp 1777; v1";
const DOCKERFILE: &str = "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/local/bin/envoy\"]\n";

static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();

/// The image reference to run, building it first if need be.
pub(super) fn envoy_image() -> Result<String, StartError> {
    if let Some(image) = std::env::var(IMAGE_VAR).ok().filter(|image| !image.trim().is_empty()) {
        return Ok(image.trim().to_owned());
    }
    let binary = envoy_binary()?;
    IMAGE.get_or_init(|| build_once(&binary)).clone().map_err(StartError::Container)
}

fn build_once(binary: &Path) -> Result<String, String> {
    let tag = image_tag(binary)?;
    if docker_output(&["image", "inspect", "--format", "{{.Id}}", &tag]).is_ok() {
        return Ok(tag);
    }
    let started = std::time::Instant::now();
    let context = tempfile::Builder::new()
        .prefix("tollgate-envoy-image-")
        .tempdir()
        .map_err(|err| format!("creating the image build context: {err}"))?;
    lay_out(binary, context.path())?;
    let output = docker(&["build", "--quiet", "--tag", &tag])
        .arg(context.path())
        .output()
        .map_err(|err| format!("running `docker build`: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "`docker build` of {tag} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    eprintln!("built image {tag} from {} in {:.1?}", binary.display(), started.elapsed());
    Ok(tag)
}

/// `tollgate-envoy:<version>-<12 hex of sha256(binary, recipe)>`.
fn image_tag(binary: &Path) -> Result<String, String> {
    let bytes = std::fs::read(binary).map_err(|err| format!("reading {}: {err}", binary.display()))?;
    let mut hash = Sha256::new();
    hash.update(&bytes);
    hash.update(RECIPE.as_bytes());
    let hash = format!("{:x}", hash.finalize());
    let version = envoy_version(binary).unwrap_or_else(|| "unknown".to_owned());
    Ok(format!("{REPOSITORY}:{version}-{}", hash.get(..12).unwrap_or(&hash)))
}

/// `1.40.0` from `envoy --version` (`... version: <sha>/1.40.0/Clean/RELEASE/BoringSSL`).
fn envoy_version(binary: &Path) -> Option<String> {
    let output = std::process::Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    parse_version(&text)
}

fn parse_version(text: &str) -> Option<String> {
    let after = text.split("version:").nth(1)?;
    let version = after.trim().split('/').nth(1)?;
    let valid =
        !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    valid.then(|| version.to_owned())
}

/// Writes the Dockerfile and `rootfs/` (binary, libraries, loader, /tmp) into `context`.
fn lay_out(binary: &Path, context: &Path) -> Result<(), String> {
    let rootfs = context.join("rootfs");
    copy_into(&rootfs, binary, Path::new("/usr/local/bin/envoy"))?;
    for library in shared_libraries(binary)? {
        copy_into(&rootfs, &library, &library)?;
    }
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|err| format!("creating {}: {err}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .map_err(|err| format!("chmod {}: {err}", tmp.display()))?;
    std::fs::write(context.join("Dockerfile"), DOCKERFILE)
        .map_err(|err| format!("writing the Dockerfile: {err}"))
}

/// Copies `source` (following symlinks) to `rootfs` + `target`.
fn copy_into(rootfs: &Path, source: &Path, target: &Path) -> Result<(), String> {
    let destination = rootfs.join(target.strip_prefix("/").unwrap_or(target));
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(|err| format!("creating {}: {err}", parent.display()))?;
    }
    std::fs::copy(source, &destination)
        .map(drop)
        .map_err(|err| format!("copying {} into the image: {err}", source.display()))
}

/// Every absolute path `ldd` names: the libraries and the dynamic loader (not the vDSO, which has none).
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let output = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|err| format!("running ldd {}: {err}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // A static binary needs nothing beside it; ldd says so and exits non-zero.
        return if format!("{text}{stderr}").contains("not a dynamic executable") {
            Ok(Vec::new())
        } else {
            Err(format!("ldd {}: {}", binary.display(), stderr.trim()))
        };
    }
    Ok(parse_ldd(&text))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with('/')))
        .map(PathBuf::from)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_from_envoy_version_output() {
        let out =
            "\nenvoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL\n";
        assert_eq!(parse_version(out).as_deref(), Some("1.40.0"));
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn takes_libraries_and_the_loader_from_ldd_but_not_the_vdso() {
        let ldd = "\tlinux-vdso.so.1 (0x00007f8022702000)\n\
                   \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f801b520000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f801b33e000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f8022704000)\n";
        assert_eq!(
            parse_ldd(ldd),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }
}

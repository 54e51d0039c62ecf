//! Publishing a Tollgate version to a running Envoy through file-based ECDS (`path_config_source` with a
//! `watched_directory`): the module is copied under a name made of its sha256, and the filter's
//! `TypedExtensionConfig` (module file, plugin configuration) is written beside it and moved into place with
//! `rename()`, which is atomic and is what the watch reacts to. Envoy loads and configures the new version
//! before it takes any request; a version whose configuration the filter rejects is refused
//! (`update_rejected`) and the previous one keeps serving. `./build.sh swap` and the hot-swap tests use it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The filter's name in the listener and in the ECDS resource (`extension_config_discovery.<name>...`).
pub const FILTER_NAME: &str = "tollgate";
/// The file Envoy's `path_config_source` names, inside the watched directory.
pub const RESOURCE_FILE: &str = "tollgate.yaml";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// What one `publish` put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub version: String,
    /// The module file the resource names (its name carries its sha256).
    pub module: PathBuf,
    pub sha256: String,
}

/// Publishes `module` (wasm bytes) with plugin configuration `config_json` as `version` in `dir`, the
/// directory the bootstrap's `path_config_source` watches. Module files are never rewritten: a new
/// module gets a new name, so a VM loading the previous one never reads a half-written file.
pub fn publish(dir: &Path, module: &[u8], config_json: &str, version: &str) -> io::Result<Published> {
    fs::create_dir_all(dir)?;
    let sha256 = format!("{:x}", Sha256::digest(module));
    let short = sha256.get(..16).unwrap_or(&sha256);
    let module_path = dir.join(format!("tollgate-{short}.wasm"));
    if !module_path.is_file() {
        write_atomically(&module_path, module)?;
    }
    let resource = discovery_response(&module_path, config_json, &format!("{version} sha256:{sha256}"));
    write_atomically(&dir.join(RESOURCE_FILE), resource.to_string().as_bytes())?;
    Ok(Published { version: version.to_string(), module: module_path, sha256 })
}

/// The ECDS file's content: a `DiscoveryResponse` holding the filter's `TypedExtensionConfig`. JSON is
/// YAML too, so the `.yaml` name needs no YAML writer.
pub fn discovery_response(module: &Path, config_json: &str, version_info: &str) -> Value {
    json!({
        "version_info": version_info,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": FILTER_NAME,
            "typed_config": {
                "@type": WASM_TYPE,
                "config": {
                    "name": FILTER_NAME,
                    "root_id": FILTER_NAME,
                    "failure_policy": "FAIL_CLOSED",
                    "allow_on_headers_stop_iteration": true,
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config_json},
                    // Shared data (rate-limit counters, JWKS copies) belongs to the vm_id, so every version that
                    // keeps it sees the state of the one before.
                    "vm_config": {
                        "vm_id": FILTER_NAME,
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": module.to_string_lossy()}}
                    }
                }
            }
        }]
    })
}

/// The HTTP filter entry of a listener that takes Tollgate from ECDS, at the filter list's indentation:
/// the bootstrap half of [`publish`].
pub fn listener_filter_yaml(dir: &Path) -> String {
    let quoted = |p: &Path| Value::String(p.to_string_lossy().into_owned()).to_string();
    format!(
        "- name: {FILTER_NAME}\n  config_discovery:\n    config_source:\n      resource_api_version: V3\n      \
         path_config_source:\n        path: {}\n        watched_directory: {{ path: {} }}\n    \
         type_urls: [\"{WASM_TYPE}\"]\n",
        quoted(&dir.join(RESOURCE_FILE)),
        quoted(dir),
    )
}

/// `module` with a custom section naming `label` appended: the same code under different bytes, so Envoy
/// sees a new module (and builds a new VM for it). Tests use it to swap real module versions.
pub fn labelled_module(module: &[u8], label: &str) -> Vec<u8> {
    let name = b"tollgate-label";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(label.as_bytes());
    let mut out = module.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(payload.len()));
    out.extend(payload);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&temp, bytes)?;
    fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labelled_module_is_still_a_module_with_other_bytes() {
        let empty = b"\0asm\x01\0\0\0";
        let labelled = labelled_module(empty, "v2");
        assert_ne!(labelled.as_slice(), empty.as_slice());
        assert_ne!(labelled, labelled_module(empty, "v3"));
        wasmtime::Module::new(&wasmtime::Engine::default(), &labelled).unwrap();
    }

    #[test]
    fn publishing_writes_the_module_once_and_swaps_the_resource() {
        let dir = tempfile::tempdir().unwrap();
        let first = publish(dir.path(), b"\0asm\x01\0\0\0", "{}", "v1").unwrap();
        let second = publish(dir.path(), b"\0asm\x01\0\0\0", r#"{"trace":{"enabled":true}}"#, "v2").unwrap();
        assert_eq!(first.module, second.module, "the same bytes keep their file");
        let resource: Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join(RESOURCE_FILE)).unwrap()).unwrap();
        assert!(resource["version_info"].as_str().unwrap().starts_with("v2 sha256:"));
        let config = &resource["resources"][0]["typed_config"]["config"];
        assert_eq!(config["configuration"]["value"], json!(r#"{"trace":{"enabled":true}}"#));
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }
}

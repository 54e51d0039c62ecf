//! The shipped Envoy configs under `envoy/` stay loadable: each bootstrap passes `envoy --mode validate`
//! (which also loads `dist/tollgate.wasm` and runs the filter's `on_configure` on the embedded config), and
//! the demo's embedded filter config stays equal to `envoy/tollgate.example.json`, and the demo's rate limit
//! service accepts `envoy/rls/limits.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;
use tollgate_harness::envoy::envoy_binary;
use tollgate_harness::repo_root;

/// YAML here that is not an Envoy bootstrap: `istio/` holds Kubernetes manifests, `ecds/live/` the versions
/// published for the hot-swap bootstrap, and any other file can say so on its first line.
fn is_bootstrap(relative: &Path, text: &str) -> bool {
    !relative.starts_with("envoy/istio")
        && !relative.starts_with("envoy/ecds/live")
        && !text.starts_with("# not-a-bootstrap")
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml") {
            found.push(path);
        }
    }
    Ok(())
}

#[test]
fn every_bootstrap_under_envoy_validates() -> Result<()> {
    let root = repo_root();
    let envoy = envoy_binary()?;
    // The configs name the module relative to the repo root, as `./build.sh demo` runs them.
    let wasm = root.join("dist/tollgate.wasm");
    ensure!(
        wasm.is_file(),
        "{} does not exist: run ./build.sh test (it builds the filter first)",
        wasm.display()
    );

    // The hot-swap bootstrap names its ECDS file, which must exist to validate: publish the demo's config
    // there, as `./build.sh swap envoy/tollgate.example.json` would.
    let example = std::fs::read_to_string(root.join("envoy/tollgate.example.json"))?;
    tollgate_harness::ecds::publish(
        &root.join("envoy/ecds/live"),
        &std::fs::read(&wasm)?,
        &example,
        "validate",
    )?;

    let mut files = Vec::new();
    yaml_files(&root.join("envoy"), &mut files)?;
    files.sort();
    let mut validated = Vec::new();
    let mut failures = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
        if !is_bootstrap(&relative, &std::fs::read_to_string(&file)?) {
            continue;
        }
        let output = Command::new(&envoy)
            .args(["--mode", "validate", "-l", "warning", "-c"])
            .arg(&relative)
            .current_dir(&root)
            .output()?;
        if !output.status.success() {
            failures.push(format!(
                "{} ({}):\n{}{}",
                relative.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        validated.push(relative);
    }
    assert!(validated.contains(&PathBuf::from("envoy/envoy.yaml")), "validated only {validated:?}");
    assert!(validated.contains(&PathBuf::from("envoy/ecds/envoy.yaml")), "validated only {validated:?}");
    assert!(failures.is_empty(), "envoy --mode validate failed:\n{}", failures.join("\n"));
    Ok(())
}

/// The `value: |` block scalar that holds the plugin configuration in a bootstrap.
fn embedded_filter_config(yaml: &str) -> Option<String> {
    let mut lines = yaml.lines().skip_while(|line| line.trim() != "value: |").skip(1).peekable();
    let first = lines.peek()?;
    let indent = first.len() - first.trim_start().len();
    let block: Vec<&str> = lines
        .take_while(|line| line.trim().is_empty() || line.len() - line.trim_start().len() >= indent)
        .collect();
    Some(block.iter().map(|line| line.get(indent..).unwrap_or("")).collect::<Vec<_>>().join("\n"))
}

#[test]
fn shipped_bootstraps_embed_their_example_filter_configs() -> Result<()> {
    let root = repo_root();
    for (bootstrap, example) in [
        ("envoy/envoy.yaml", "envoy/tollgate.example.json"),
        ("envoy/ai-gateway.yaml", "envoy/ai-gateway.example.json"),
    ] {
        let yaml = std::fs::read_to_string(root.join(bootstrap))?;
        let embedded =
            embedded_filter_config(&yaml).with_context(|| format!("no `value: |` block in {bootstrap}"))?;
        let embedded: Value = serde_json::from_str(&embedded)
            .with_context(|| format!("the config in {bootstrap} is not JSON"))?;
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(root.join(example))?)?;
        assert_eq!(embedded, expected, "{bootstrap} and {example} disagree");
    }
    Ok(())
}

/// Tollgate pauses request headers while it reads a body it must decide on; without this setting Envoy turns
/// the pause into StopAll and such requests hang (envoy_ai.rs shows the launcher's bootstrap working with it).
#[test]
fn shipped_bootstraps_let_the_filter_read_bodies_behind_held_headers() -> Result<()> {
    let root = repo_root();
    for bootstrap in ["envoy/envoy.yaml", "envoy/ai-gateway.yaml"] {
        let yaml = std::fs::read_to_string(root.join(bootstrap))?;
        ensure!(
            yaml.contains("allow_on_headers_stop_iteration: true"),
            "{bootstrap}: the wasm filter needs allow_on_headers_stop_iteration: true"
        );
    }
    Ok(())
}

#[test]
fn the_demo_rate_limit_service_accepts_the_shipped_limits() -> Result<()> {
    let limits: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("envoy/rls/limits.json"))?)?;
    let binary = Path::new(env!("CARGO_BIN_EXE_tollgate-rls"));
    let mut service = tollgate_harness::rls::RateLimitService::start(binary, "memory", &limits)?;
    assert!(service.is_running(), "{}", service.stderr());
    Ok(())
}

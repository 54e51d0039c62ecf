//! The Istio manifests under `envoy/istio/` stay loadable: the WasmPlugin passes the WasmPlugin CRD's schema
//! (`envoy/istio/wasmplugin.schema.json`) and its `pluginConfig` compiles in `dist/tollgate.wasm`; the
//! EnvoyFilter for AI routes carries a filter config that a real Envoy accepts (`envoy --mode validate`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a failure is the point

use std::process::Command;

use serde_json::{json, Value};
use tollgate_harness::{replay, repo_root, tollgate_wasm};

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn wasm_plugin_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("envoy/istio/wasmplugin.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("wasmplugin.schema.json: {e}"))
}

fn schema_errors(schema: &jsonschema::Validator, manifest: &Value) -> Vec<String> {
    schema.iter_errors(manifest).map(|e| format!("{}: {e}", e.instance_path)).collect()
}

/// Compiles a Tollgate config in the module, as Envoy's `on_configure` would.
fn compile(config: &Value) -> Result<(), String> {
    replay::check(&tollgate_wasm(), &serde_json::to_vec(config).unwrap()).map_err(|e| e.to_string())
}

#[test]
fn wasm_plugin_matches_the_crd_schema() {
    let manifest = yaml("envoy/istio/wasmplugin.yaml");
    let errors = schema_errors(&wasm_plugin_schema(), &manifest);
    assert!(errors.is_empty(), "envoy/istio/wasmplugin.yaml:\n{}", errors.join("\n"));

    let spec = &manifest["spec"];
    assert_eq!(spec["pluginName"], "tollgate", "the root_id the filter is configured under everywhere else");
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert!(spec["url"].as_str().unwrap().starts_with("oci://"), "{}", spec["url"]);
    let sha256 = spec["sha256"].as_str().unwrap();
    assert!(
        sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "sha256 must be 64 lower-case hex characters: {sha256}"
    );
}

#[test]
fn wasm_plugin_config_compiles_in_the_module() {
    let manifest = yaml("envoy/istio/wasmplugin.yaml");
    let config = &manifest["spec"]["pluginConfig"];
    assert!(config.get("auth").is_some() && config.get("ratelimit").is_some(), "{config}");
    compile(config).unwrap_or_else(|e| panic!("pluginConfig: {e}"));
}

/// What a mistake changes in a manifest, and what it is called.
type Mutation = (&'static str, fn(&mut Value));

#[test]
fn mutated_wasm_plugins_are_refused() {
    let schema = wasm_plugin_schema();
    let mutations: [Mutation; 9] = [
        ("phase AUTH", |m| m["spec"]["phase"] = json!("AUTH")),
        // Envoy's spelling of the same idea; Istio's enum is FAIL_CLOSE.
        ("failStrategy FAIL_CLOSED", |m| m["spec"]["failStrategy"] = json!("FAIL_CLOSED")),
        ("imagePullPolicy Never", |m| m["spec"]["imagePullPolicy"] = json!("Never")),
        ("an unknown field", |m| m["spec"]["rootId"] = json!("tollgate")),
        ("an upper-case sha256", |m| {
            let upper = m["spec"]["sha256"].as_str().unwrap().replace('0', "A");
            m["spec"]["sha256"] = json!(upper);
        }),
        ("a short sha256", |m| m["spec"]["sha256"] = json!("abc123")),
        ("an s3:// url", |m| m["spec"]["url"] = json!("s3://bucket/tollgate.wasm")),
        ("selector and targetRefs", |m| {
            m["spec"]["targetRefs"] =
                json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]);
        }),
        ("priority as a string", |m| m["spec"]["priority"] = json!("high")),
    ];
    let original = yaml("envoy/istio/wasmplugin.yaml");
    for (what, mutate) in mutations {
        let mut manifest = original.clone();
        mutate(&mut manifest);
        assert!(!schema.is_valid(&manifest), "a WasmPlugin with {what} passed the schema");
    }

    let mut config = original["spec"]["pluginConfig"].clone();
    config["ratelimit"]["rules"][0]["per"] = json!("fortnight");
    let refused = compile(&config).expect_err("a pluginConfig with an unknown window compiled");
    assert!(refused.contains("ratelimit.rules[0]"), "{refused}");
}

#[test]
fn envoy_filter_for_ai_routes_loads_in_envoy() {
    let manifest = yaml("envoy/istio/envoyfilter-ai.yaml");
    let patches = manifest["spec"]["configPatches"].as_array().unwrap();
    let extension = &patches.iter().find(|p| p["applyTo"] == "EXTENSION_CONFIG").unwrap()["patch"]["value"];
    let filter = &patches.iter().find(|p| p["applyTo"] == "HTTP_FILTER").unwrap()["patch"]["value"];
    // Merged into the gateway's HTTP connection manager: validated below as part of it.
    let hcm = &patches.iter().find(|p| p["applyTo"] == "NETWORK_FILTER").unwrap()["patch"];
    assert_eq!(hcm["operation"], "MERGE");
    let local_reply = hcm["value"]["typed_config"]["local_reply_config"].clone();
    assert!(local_reply["mappers"][0]["body_format_override"]["json_format"]["error"].is_object());
    assert_eq!(
        filter["name"], extension["name"],
        "the HTTP filter must ask ECDS for the config the patch adds"
    );

    let mut wasm = extension["typed_config"].clone();
    let plugin = &mut wasm["config"];
    assert_eq!(plugin["allow_on_headers_stop_iteration"], true, "the reason this EnvoyFilter exists");
    assert_eq!(plugin["root_id"], "tollgate");
    let config: Value = serde_json::from_str(plugin["configuration"]["value"].as_str().unwrap()).unwrap();
    compile(&config).unwrap_or_else(|e| panic!("the EnvoyFilter's configuration: {e}"));

    // What the Istio agent hands Envoy once it has pulled the image: the same config, the code a local file.
    assert!(plugin["vm_config"]["code"]["remote"]["http_uri"]["uri"].as_str().unwrap().starts_with("oci://"));
    plugin["vm_config"]["code"] = json!({"local": {"filename": tollgate_wasm()}});
    let bootstrap = json!({
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "gateway",
                        "local_reply_config": local_reply,
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "outbound|443||api.openai.com"}}]
                        }]},
                        "http_filters": [
                            {"name": filter["name"], "typed_config": wasm},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}]
            }],
            "clusters": [{
                "name": "outbound|443||api.openai.com",
                "type": "STATIC",
                "load_assignment": {"cluster_name": "outbound|443||api.openai.com", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}}}
                ]}]}
            }]
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&bootstrap).unwrap()).unwrap();
    let envoy = tollgate_harness::envoy::envoy_binary().unwrap();
    let output =
        Command::new(envoy).args(["--mode", "validate", "-l", "warning", "-c"]).arg(&path).output().unwrap();
    assert!(
        output.status.success(),
        "envoy --mode validate refused the EnvoyFilter's filter config ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

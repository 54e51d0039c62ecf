//! A second listener for a test Envoy whose route has the timeouts a streaming AI route runs with: no overall
//! response timeout (a stream may run for minutes) but an idle timeout, so a provider that stalls mid-stream
//! is cut. The launcher's bootstrap has neither (and Envoy ignores `x-envoy-upstream-rq-timeout-ms` from an
//! external client), so it comes in through `--config-yaml`, which Envoy merges into the bootstrap: a
//! listener of its own, with the same wasm filter and the launcher's clusters, on a port read back from the
//! admin API.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use serde_json::{json, Value};
use tollgate_harness::envoy::{Envoy, EnvoyBuilder};

/// The added listener's name.
pub const FAULTS_LISTENER: &str = "faults_ingress";

/// Adds to `builder` a listener whose only route takes its cluster from `cluster_header`, with no response
/// timeout and the given idle timeout, running the filter with `filter_config`.
pub fn with_idle_timeout_listener(
    builder: EnvoyBuilder,
    filter_config: &str,
    cluster_header: &str,
    idle: Duration,
) -> EnvoyBuilder {
    let wasm = tollgate_harness::tollgate_wasm();
    let wasm = wasm.canonicalize().unwrap_or(wasm);
    let filter = json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "tollgate", "root_id": "tollgate", "failure_policy": "FAIL_CLOSED",
                "allow_on_headers_stop_iteration": true,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": filter_config},
                "vm_config": {"vm_id": "tollgate", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm.to_string_lossy()}}}
            }
        }
    });
    let route = json!({"cluster_header": cluster_header, "timeout": "0s",
                       "idle_timeout": format!("{}s", idle.as_secs_f64())});
    let listener = json!({
        "name": FAULTS_LISTENER,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "faults_http",
                // As the launcher's listener: Envoy's upstream-failure replies in the OpenAI error shape.
                "local_reply_config": {"mappers": [{
                    "filter": {"response_flag_filter": {"flags": ["UH", "UF", "UO", "UT", "UR", "UC", "URX", "SI", "UPE", "UMSDR"]}},
                    "body_format_override": {"json_format": {"error": {
                        "message": "%LOCAL_REPLY_BODY%", "type": "upstream_error", "code": "upstream_failure"
                    }}}
                }]},
                "route_config": {"name": "faults_route", "virtual_hosts": [{
                    "name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": route}]
                }]},
                "http_filters": [filter, {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                }]
            }
        }]}]
    });
    // JSON is YAML, so the fragment needs no YAML of its own.
    let fragment = json!({"static_resources": {"listeners": [listener]}});
    builder.arg("--config-yaml").arg(&fragment.to_string())
}

/// Where the added listener listens.
pub fn faults_listener_addr(envoy: &Envoy) -> Result<SocketAddr> {
    let listeners: Value = serde_json::from_str(&envoy.admin_get("/listeners?format=json")?)?;
    let statuses = listeners["listener_statuses"].as_array().context("no listener_statuses")?;
    let status = statuses
        .iter()
        .find(|s| s["name"] == FAULTS_LISTENER)
        .ok_or_else(|| anyhow!("no {FAULTS_LISTENER} in {listeners}"))?;
    let port = status.pointer("/local_address/socket_address/port_value").and_then(Value::as_u64);
    let port = u16::try_from(port.context("no port")?)?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

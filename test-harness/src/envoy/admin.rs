//! Reads a running Envoy's admin API: readiness, the listener's bound port, and stats.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

/// Envoy names the metrics a wasm filter defines `wasmcustom.<name>` in the admin API; Prometheus output
/// strips the prefix again (`tollgate_requests_total`).
pub const WASM_CUSTOM_PREFIX: &str = "wasmcustom.";

/// An HTTP client for tests: responses of any status are returned rather than turned into errors,
/// proxies from the environment are ignored (everything here is loopback), and nothing hangs forever.
pub fn http_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A plain-text GET for the admin API, which answers quickly or not at all.
pub(crate) fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<(u16, String)> {
    let mut response = agent.get(url).call().with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().with_context(|| format!("reading GET {url}"))?;
    Ok((status, body))
}

/// The port a listener bound, from `/listeners?format=json`, which is how port 0 listeners are found.
pub(crate) fn listener_port(listeners_json: &str, listener: &str) -> anyhow::Result<u16> {
    let doc: Value = serde_json::from_str(listeners_json).context("admin /listeners is not JSON")?;
    let statuses = doc
        .get("listener_statuses")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no listener_statuses"))?;
    let status = statuses
        .iter()
        .find(|status| status.get("name").and_then(Value::as_str) == Some(listener))
        .ok_or_else(|| anyhow!("no listener named {listener} in {listeners_json}"))?;
    let port = status
        .pointer("/local_address/socket_address/port_value")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("listener {listener} has no port_value: {status}"))?;
    match u16::try_from(port) {
        Ok(0) | Err(_) => bail!("listener {listener} reports port {port}"),
        Ok(port) => Ok(port),
    }
}

/// The `host:port` Envoy writes to `--admin-address-path` once the admin listener is bound.
pub(crate) fn parse_admin_address(text: &str) -> Option<SocketAddr> {
    text.trim().parse().ok()
}

/// A snapshot of Envoy's counters and gauges (histograms are left out), from `/stats?format=json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    values: BTreeMap<String, u64>,
}

impl Stats {
    pub(crate) fn parse(stats_json: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_json::from_str(stats_json).context("admin /stats is not JSON")?;
        let entries = doc.get("stats").and_then(Value::as_array).ok_or_else(|| anyhow!("no stats array"))?;
        let values = entries
            .iter()
            .filter_map(|entry| {
                Some((entry.get("name")?.as_str()?.to_owned(), entry.get("value")?.as_u64()?))
            })
            .collect();
        Ok(Stats { values })
    }

    /// A counter or gauge by its full admin name, e.g. `http.ingress_http.downstream_rq_total`.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }

    /// A metric the wasm filter defined, by the name the filter gave it (`tollgate_requests_total`).
    pub fn wasm_custom(&self, name: &str) -> Option<u64> {
        self.values.get(&format!("{WASM_CUSTOM_PREFIX}{name}")).copied()
    }

    /// Every counter and gauge, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.values.iter().map(|(name, value)| (name.as_str(), *value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_named_listener_port() {
        let json = r#"{"listener_statuses":[
            {"name":"other","local_address":{"socket_address":{"address":"127.0.0.1","port_value":1}}},
            {"name":"tollgate_ingress","local_address":{"socket_address":{"address":"127.0.0.1","port_value":36125}}}]}"#;
        assert_eq!(listener_port(json, "tollgate_ingress").unwrap(), 36125);
        assert!(listener_port(json, "missing").is_err());
    }

    #[test]
    fn stats_keep_counters_and_gauges_and_skip_histograms() {
        let json = r#"{"stats":[
            {"name":"wasmcustom.tollgate_requests_total","value":4},
            {"name":"wasm.wasm_vm_count","value":2},
            {"histograms":{"supported_quantiles":[0.5],"computed_quantiles":[]}}]}"#;
        let stats = Stats::parse(json).unwrap();
        assert_eq!(stats.wasm_custom("tollgate_requests_total"), Some(4));
        assert_eq!(stats.get("wasm.wasm_vm_count"), Some(2));
        assert_eq!(stats.get("absent"), None);
        assert_eq!(stats.iter().count(), 2);
    }

    #[test]
    fn admin_address_file_may_end_with_a_newline() {
        assert_eq!(parse_admin_address("127.0.0.1:9901\n"), Some("127.0.0.1:9901".parse().unwrap()));
        assert_eq!(parse_admin_address(""), None);
    }
}

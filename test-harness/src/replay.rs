//! Offline replay: run one scenario (a request, and the upstream's answer) through a filter module and
//! configuration in the wasmtime host, and report what the filter did. Backs the `tollgate-replay` CLI,
//! which operators use to try a configuration without an Envoy.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::host::{DownstreamResponse, Host, HostError, LogLine, Request, Response, UpstreamRequest};

/// What to replay: the client's request and, if it reaches the upstream, the upstream's response.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub request: Request,
    /// The upstream's answer; a plain 200 with no body when absent.
    #[serde(default)]
    pub response: Option<Response>,
}

/// The outcome of a replay, printed as JSON by the CLI.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `"local_reply"` when the filter answered, `"forwarded"` when the upstream was reached,
    /// `"incomplete"` when the request was left paused or reset.
    pub outcome: &'static str,
    /// The request as the upstream received it, after the filter's edits.
    pub upstream_request: Option<UpstreamRequest>,
    /// The response as the client received it.
    pub response: DownstreamResponse,
    pub local_reply_details: Option<String>,
    /// Every step the request met and what it decided (the filter's decision trace, recorded for the replay
    /// whatever the configuration's `trace` section says).
    pub trace: Option<String>,
    pub logs: Vec<LogLine>,
    /// Every metric the filter defined, by name (histograms: their samples' count).
    pub metrics: BTreeMap<String, i64>,
}

/// Why a replay could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The filter refused the configuration; `reason` is its own words (the JSON path and why).
    #[error("configuration rejected: {reason}")]
    ConfigRejected { reason: String },
    #[error(transparent)]
    Host(HostError),
    #[error("{0}")]
    Input(String),
}

impl From<HostError> for ReplayError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::ConfigRejected { logs } => {
                ReplayError::ConfigRejected { reason: rejection_reason(&logs) }
            }
            other => ReplayError::Host(other),
        }
    }
}

/// Loads the module and starts it with `config`, exactly as Envoy's `on_configure` would.
pub fn check(wasm: &Path, config: &[u8]) -> Result<(), ReplayError> {
    Host::load(wasm)?.plugin(config).start()?;
    Ok(())
}

/// Replays `scenario` through the module started with `config`.
pub fn run(wasm: &Path, config: &[u8], scenario: Scenario) -> Result<Report, ReplayError> {
    let config = with_trace(config);
    let mut vm = Host::load(wasm)?.plugin(&config).start()?;
    vm.clear_logs();
    let exchange = vm.send(scenario.request).respond_with(scenario.response.unwrap_or_default()).run()?;
    let metrics = vm
        .metric_kinds()
        .into_iter()
        .map(|(name, _)| {
            let value =
                vm.metric(&name).unwrap_or_else(|| i64::try_from(vm.histogram(&name).len()).unwrap_or(0));
            (name, value)
        })
        .collect();
    let outcome = match (&exchange.local_reply_details, &exchange.upstream) {
        (Some(_), _) => "local_reply",
        (None, Some(_)) if exchange.downstream.status != 0 => "forwarded",
        _ => "incomplete",
    };
    Ok(Report {
        outcome,
        upstream_request: exchange.upstream,
        response: exchange.downstream,
        local_reply_details: exchange.local_reply_details,
        trace: exchange.filter_state.get("wasm.tollgate_trace").cloned(),
        logs: vm.logs().to_vec(),
        metrics,
    })
}

/// The configuration with the decision trace turned on, so the report can say why; anything that is not a
/// JSON object is passed on as it is, for the filter to refuse in its own words.
fn with_trace(config: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut root)) = serde_json::from_slice(config) else {
        return config.to_vec();
    };
    let trace = root.entry("trace").or_insert_with(|| serde_json::json!({}));
    if let Some(trace) = trace.as_object_mut() {
        trace.insert("enabled".into(), serde_json::Value::Bool(true));
    }
    serde_json::to_vec(&root).unwrap_or_else(|_| config.to_vec())
}

/// Parses a scenario file's contents.
pub fn parse_scenario(bytes: &[u8]) -> Result<Scenario, ReplayError> {
    serde_json::from_slice(bytes).map_err(|e| ReplayError::Input(format!("invalid scenario: {e}")))
}

/// The filter's own explanation from its logs (`configuration rejected: <path>: <why>`), or
/// the whole log when the module said something else.
fn rejection_reason(logs: &str) -> String {
    const MARKER: &str = "configuration rejected: ";
    logs.lines()
        .find_map(|line| line.split_once(MARKER).map(|(_, reason)| reason.trim().to_string()))
        .unwrap_or_else(|| format!("on_configure returned false; guest logs:\n{logs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_own_reason_is_extracted_from_its_logs() {
        let logs = "[info] starting\n[error] configuration rejected: a.b[1]: must be > 0\n";
        assert_eq!(rejection_reason(logs), "a.b[1]: must be > 0");
        assert!(rejection_reason("[error] boom").contains("boom"));
    }

    #[test]
    fn scenarios_reject_unknown_fields() {
        assert!(parse_scenario(br#"{"request":{"path":"/"},"respons":{}}"#).is_err());
        assert!(parse_scenario(br#"{"request":{"method":"GET","path":"/"}}"#).is_ok());
    }

    #[test]
    fn headers_may_be_an_object_or_ordered_pairs() {
        let object =
            parse_scenario(br#"{"request":{"headers":{"a":"1","b":"2"}},"response":{"headers":{"c":"3"}}}"#);
        let object = object.unwrap();
        assert_eq!(object.request.headers, [("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(object.response.unwrap().headers, [("c".to_string(), "3".to_string())]);
        let pairs = parse_scenario(br#"{"request":{"headers":[["a","1"],["a","2"]]}}"#).unwrap();
        assert_eq!(pairs.request.headers, [("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert!(parse_scenario(br#"{"request":{"headers":{"a":1}}}"#).is_err());
    }
}

//! The decision trace: every step a request met and what it decided, in order, e.g.
//! `auth:allow consumer=alice via=key:k1; ratelimit.fleet:allow; ratelimit:allow; ai:forward`. Owns the
//! `trace` config section. Off by default (it costs a string per request). When on, the filter publishes it
//! as filter state (`wasm.tollgate_trace`, for the access log) and returns it in the `x-tollgate-trace`
//! response header to the consumers and groups the section trusts — never to anyone else.

use serde::Deserialize;
use tollgate_auth::Consumer;
use tollgate_core::{ConfigError, ConfigPath};

/// The response header that carries the trace to trusted callers.
pub const TRACE_HEADER: &str = "x-tollgate-trace";
/// The property (Envoy filter state `wasm.tollgate_trace`) the filter publishes the trace under.
pub const TRACE_PROPERTY: &str = "tollgate_trace";
/// A trace longer than this is cut (it goes into headers and log lines).
const MAX_TRACE_BYTES: usize = 1_024;

/// `trace` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrace {
    /// Record traces and publish them as filter state for the access log.
    #[serde(default)]
    pub enabled: bool,
    /// Consumers (by name) and groups that get the trace in the `x-tollgate-trace` response header.
    #[serde(default)]
    pub header_for_consumers: Vec<String>,
    #[serde(default)]
    pub header_for_groups: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct TraceConfig {
    pub enabled: bool,
    consumers: Vec<String>,
    groups: Vec<String>,
}

impl TraceConfig {
    pub fn compile(raw: RawTrace, at: &ConfigPath) -> Result<TraceConfig, ConfigError> {
        let trusts_someone = !raw.header_for_consumers.is_empty() || !raw.header_for_groups.is_empty();
        if trusts_someone && !raw.enabled {
            return Err(at
                .field("enabled")
                .error("must be true for header_for_consumers or header_for_groups"));
        }
        for (field, names) in [
            ("header_for_consumers", &raw.header_for_consumers),
            ("header_for_groups", &raw.header_for_groups),
        ] {
            if let Some(i) = names.iter().position(String::is_empty) {
                return Err(at.field(field).index(i).error("must not be empty"));
            }
        }
        Ok(TraceConfig {
            enabled: raw.enabled,
            consumers: raw.header_for_consumers,
            groups: raw.header_for_groups,
        })
    }

    /// Whether this caller may see the trace in a response header.
    pub fn trusts(&self, consumer: Option<&Consumer>) -> bool {
        consumer.is_some_and(|c| {
            self.consumers.contains(&c.name) || c.group.as_ref().is_some_and(|g| self.groups.contains(g))
        })
    }
}

/// The steps of one request so far.
#[derive(Debug, Default)]
pub struct Trace {
    steps: Vec<String>,
    /// Steps were added since the filter last published the trace.
    changed: bool,
}

impl Trace {
    /// Adds a step (`what:decision detail`).
    pub fn step(&mut self, step: String) {
        self.steps.push(step);
        self.changed = true;
    }

    /// The whole trace, `; `-separated, cut to a bound on a character boundary.
    pub fn render(&self) -> String {
        let mut text = self.steps.join("; ");
        if text.len() > MAX_TRACE_BYTES {
            let mut cut = MAX_TRACE_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text
    }

    /// The trace, if it changed since this was last called.
    pub fn take_update(&mut self) -> Option<String> {
        std::mem::take(&mut self.changed).then(|| self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_render_in_order_and_updates_are_reported_once() {
        let mut trace = Trace::default();
        assert_eq!(trace.take_update(), None);
        trace.step("auth:allow consumer=alice".into());
        trace.step("ratelimit:allow".into());
        assert_eq!(trace.take_update().as_deref(), Some("auth:allow consumer=alice; ratelimit:allow"));
        assert_eq!(trace.take_update(), None);
    }

    #[test]
    fn long_traces_are_cut_on_a_character_boundary() {
        let mut trace = Trace::default();
        trace.step("é".repeat(2_000));
        let text = trace.render();
        assert!(text.len() <= MAX_TRACE_BYTES + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }
}

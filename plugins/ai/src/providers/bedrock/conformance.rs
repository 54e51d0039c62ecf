//! The Bedrock fixtures' config and clock, for the unit tests here. The fixtures themselves
//! (`tests/fixtures/bedrock`, event streams given as frames) run through the whole gateway in the shared
//! runner, `tests/conformance.rs`: streams fed whole, split in two at every byte boundary, one byte at a time.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tollgate_core::ConfigPath;

use crate::config::{AiConfig, RawAiConfig};
use crate::AiError;

/// The gateway's clock in tests (`MemoryHost`): 2023-11-14T22:13:20Z, so signatures are fixed.
pub(super) const CREATED: u64 = 1_700_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bedrock")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(super) fn config() -> AiConfig {
    let raw: RawAiConfig = serde_json::from_value(read_json(&fixtures().join("provider.json"))).unwrap();
    AiConfig::compile(raw, &ConfigPath::root().field("ai")).unwrap()
}

/// The truncated-stream case ends with the error event the gateway writes, then `[DONE]`.
#[test]
fn a_cut_stream_ends_with_the_truncation_error() {
    let error = AiError::TruncatedStream.to_openai_json();
    let case = read_json(&fixtures().join("stream_truncated.json"));
    let events = case["expected_client"]["sse"].as_array().unwrap();
    assert_eq!(events[events.len() - 2], error);
}

//! Guest log lines (`proxy_log`, and stdout/stderr written through WASI) as the host captured them.

use serde::{Deserialize, Serialize};

/// proxy-wasm log levels; a line below the VM's level is dropped, as Envoy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub fn from_raw(raw: i32) -> Self {
        match raw {
            i32::MIN..=0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            _ => Self::Critical,
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(super::abi::log_level_name(*self as u32))
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// The last `n` lines, one per line, for error messages.
pub(crate) fn tail(lines: &[LogLine], n: usize) -> String {
    let start = lines.len().saturating_sub(n);
    let shown: Vec<String> = lines.iter().skip(start).map(ToString::to_string).collect();
    if shown.is_empty() {
        "(no guest log lines)".to_string()
    } else {
        shown.join("\n")
    }
}

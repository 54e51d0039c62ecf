//! Tollgate's shared vocabulary: the request/response model every plugin reads, the `Verdict` every plugin
//! returns, the narrow host ports (`Clock`, `SharedStore`, `Metrics`) through which side effects flow, and the
//! `ConfigError` that names the JSON path of a bad setting. Owns no config section of its own.

mod callout;
mod civil;
mod config_error;
mod header_name;
mod headers;
mod json_path;
mod message;
mod ports;
mod reason;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod verdict;

pub use callout::{CallOutcome, Callout, GrpcCall, OutboundCall};
pub use civil::{civil_from_days, days_from_civil};
pub use config_error::{ConfigError, ConfigPath};
pub use header_name::header_name;
pub use headers::Headers;
pub use json_path::{error_path as json_error_path, path_at as json_path_at};
pub use message::{RequestHead, ResponseHead};
pub use ports::{CasToken, Clock, Metric, Metrics, Ports, SharedStore, StoreError, STORE_PREFIX};
pub use reason::{Reason, REASON_HEADER};
pub use verdict::{BodyVerdict, HeaderEdits, LocalReply, Verdict};

use std::time::Duration;

/// An HTTP request the filter makes itself through an Envoy cluster (proxy-wasm `http_call`), for
/// example to fetch a JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundCall {
    /// The Envoy cluster to send it to.
    pub cluster: String,
    pub method: String,
    /// Path including any query string.
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl OutboundCall {
    pub fn get(
        cluster: impl Into<String>,
        authority: impl Into<String>,
        path: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        OutboundCall {
            cluster: cluster.into(),
            method: "GET".into(),
            path: path.into(),
            authority: authority.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout,
        }
    }
}

/// How an outbound call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The cluster answered (any status).
    Response { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// No answer: timeout, reset, or the cluster is unknown or unreachable.
    Failed { reason: String },
}

impl CallOutcome {
    /// The body of a 2xx answer, if that is what came back.
    pub fn ok_body(&self) -> Option<&[u8]> {
        match self {
            CallOutcome::Response { status: 200..=299, body, .. } => Some(body),
            _ => None,
        }
    }
}

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

/// A unary gRPC call the filter makes itself through an Envoy cluster (proxy-wasm `grpc_call`), for example
/// `ShouldRateLimit` to a rate limit service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCall {
    /// The Envoy cluster to send it to (it must speak HTTP/2).
    pub cluster: String,
    /// Fully qualified service name, e.g. `envoy.service.ratelimit.v3.RateLimitService`.
    pub service: String,
    pub method: String,
    /// The request message, protobuf-encoded.
    pub message: Vec<u8>,
    pub timeout: Duration,
}

/// A call a verdict asks the filter to make before the pipeline decides again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callout {
    Http(OutboundCall),
    Grpc(GrpcCall),
}

impl Callout {
    /// The cluster the call goes to, for logs.
    pub fn cluster(&self) -> &str {
        match self {
            Callout::Http(call) => &call.cluster,
            Callout::Grpc(call) => &call.cluster,
        }
    }
}

/// How an outbound call ended. A gRPC call that returned OK is a `Response` with status 200 and the reply
/// message as its body; any other gRPC status is `Failed`.
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

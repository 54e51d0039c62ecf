//! Outbound calls the guest makes (`proxy_http_call`, `proxy_grpc_call`, `proxy_grpc_stream`), the
//! record tests assert on, and the scripted replies the host plays back.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bytes::Body;
use super::message::{Headers, Response};

/// Which hostcall made the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Http,
    Grpc,
    GrpcStream,
}

/// One outbound call as the guest made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundCall {
    pub token: u32,
    pub kind: CallKind,
    /// The context that made the call (the effective context at the time) — it gets the answer.
    pub context_id: u32,
    /// Which VM (worker index within the host) made it.
    pub vm: usize,
    /// The cluster (`upstream` argument); for gRPC, the raw `GrpcService` bytes read as text.
    pub cluster: String,
    pub headers: Headers,
    pub body: Body,
    pub trailers: Headers,
    /// gRPC service and method (empty for HTTP).
    pub service: String,
    pub method: String,
    /// Messages sent on a gRPC stream with `proxy_grpc_send`.
    pub messages: Vec<Body>,
    /// `None` when the guest passed 0 (no timeout).
    pub timeout: Option<Duration>,
    /// Virtual time of the call, nanoseconds since the Unix epoch.
    pub at_nanos: u64,
}

impl OutboundCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A gRPC answer: for a unary call the first message is the response; for a stream every part is
/// delivered in order (initial metadata, messages, trailing metadata, close).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcReply {
    pub status: u32,
    pub status_message: String,
    pub initial_metadata: Headers,
    pub messages: Vec<Body>,
    pub trailing_metadata: Headers,
}

impl GrpcReply {
    pub fn ok(message: impl AsRef<[u8]>) -> Self {
        Self { messages: vec![Body(message.as_ref().to_vec())], ..Self::default() }
    }
    pub fn error(status: u32, message: &str) -> Self {
        Self { status, status_message: message.into(), ..Self::default() }
    }
}

/// How the host answers a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Http(Response),
    Grpc(GrpcReply),
    /// Never answers: the guest sees a timeout once the virtual clock passes the call's deadline.
    Never,
    /// Answers once the virtual clock has advanced this much past the call.
    After(Duration, Box<Reply>),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Reply::Http(r)
    }
}

impl From<GrpcReply> for Reply {
    fn from(r: GrpcReply) -> Self {
        Reply::Grpc(r)
    }
}

/// A closure that decides how to answer a call; `None` passes to the next script.
pub type Responder = Arc<dyn Fn(&OutboundCall) -> Option<Reply> + Send + Sync>;

/// Scripted answers, shared by every VM of a host. Closures win over per-cluster replies; an
/// unscripted call stays pending until the test answers it or its deadline passes.
#[derive(Default, Clone)]
pub(crate) struct Scripts {
    by_cluster: Vec<(String, Reply)>,
    responders: Vec<Responder>,
    /// When set, calls to any other cluster fail with BadArgument, as Envoy fails unknown clusters.
    known_clusters: Option<Vec<String>>,
}

impl Scripts {
    pub fn on_cluster(&mut self, cluster: &str, reply: Reply) {
        self.by_cluster.retain(|(c, _)| c != cluster);
        self.by_cluster.push((cluster.to_string(), reply));
    }

    pub fn respond_with(&mut self, responder: Responder) {
        self.responders.push(responder);
    }

    pub fn set_known_clusters(&mut self, clusters: Vec<String>) {
        self.known_clusters = Some(clusters);
    }

    pub fn knows_cluster(&self, cluster: &str) -> bool {
        self.known_clusters.as_ref().is_none_or(|known| known.iter().any(|c| c == cluster))
    }

    pub fn reply_for(&self, call: &OutboundCall) -> Option<Reply> {
        self.responders
            .iter()
            .rev()
            .find_map(|r| r(call))
            .or_else(|| self.by_cluster.iter().find(|(c, _)| *c == call.cluster).map(|(_, r)| r.clone()))
    }
}

/// A call the VM is waiting to answer.
#[derive(Debug, Clone)]
pub(crate) struct PendingCall {
    pub token: u32,
    pub context_id: u32,
    pub kind: CallKind,
    /// Virtual nanoseconds after which the guest sees a timeout; `None` waits forever.
    pub deadline: Option<u64>,
    /// A scripted answer and when it is due.
    pub scheduled: Option<(u64, Reply)>,
}

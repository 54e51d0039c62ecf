//! What a test sends and what it gets back: the downstream request, the upstream's scripted response,
//! and the [`Exchange`] that records what each side saw. All of it is serde-friendly so the replay
//! CLI can read a scenario from JSON and print the outcome as JSON.

use serde::{Deserialize, Serialize};

use super::bytes::{Body, Chunks};

/// Header pairs in order; names as given (the host lower-cases them on the way into the guest).
pub type Headers = Vec<(String, String)>;

/// The builder methods requests and responses share: headers, the body (whole or in chunks), trailers.
macro_rules! message_builders {
    ($side:literal) => {
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.into(), value.into()));
            self
        }
        /// The whole body in one chunk (replaces earlier chunks).
        pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
            self.body = Chunks(vec![Body(body.as_ref().to_vec())]);
            self
        }
        #[doc = concat!("The body split into chunks, each delivered to `proxy_on_", $side, "_body` separately.")]
        pub fn body_chunks<I, B>(mut self, chunks: I) -> Self
        where
            I: IntoIterator<Item = B>,
            B: AsRef<[u8]>,
        {
            self.body = Chunks(chunks.into_iter().map(|c| Body(c.as_ref().to_vec())).collect());
            self
        }
        pub fn trailers<'a>(mut self, trailers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
            self.trailers = trailers.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
            self
        }
    };
}

/// A downstream HTTP request, built fluently: `Request::post("/v1/chat").header(..).body(..)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub scheme: String,
    #[serde(deserialize_with = "pairs_or_object")]
    pub headers: Headers,
    /// Body chunks as they arrive from the client; JSON accepts one string or a list of them.
    pub body: Chunks,
    #[serde(deserialize_with = "pairs_or_object")]
    pub trailers: Headers,
    /// Per-stream properties (`"source.address"`, `"request.id"`, ...), dotted paths.
    #[serde(deserialize_with = "pairs_or_object")]
    pub properties: Vec<(String, String)>,
}

impl Default for Request {
    fn default() -> Self {
        Self {
            method: "GET".into(),
            path: "/".into(),
            authority: "tollgate.test".into(),
            scheme: "http".into(),
            headers: Vec::new(),
            body: Chunks::default(),
            trailers: Vec::new(),
            properties: Vec::new(),
        }
    }
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self { method: method.into(), path: path.into(), ..Self::default() }
    }
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }
    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = authority.into();
        self
    }
    message_builders!("request");
    /// A per-stream property such as `"source.address"`; read by the guest via `proxy_get_property`.
    pub fn property(mut self, path: &str, value: &str) -> Self {
        self.properties.push((path.into(), value.into()));
        self
    }
}

/// An HTTP response: what the upstream answers, or what an `http_call` cluster answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Response {
    pub status: u16,
    #[serde(deserialize_with = "pairs_or_object")]
    pub headers: Headers,
    /// Body chunks (SSE events, say), each delivered to `proxy_on_response_body` separately.
    pub body: Chunks,
    #[serde(deserialize_with = "pairs_or_object")]
    pub trailers: Headers,
}

impl Default for Response {
    fn default() -> Self {
        Self { status: 200, headers: Vec::new(), body: Chunks::default(), trailers: Vec::new() }
    }
}

impl Response {
    pub fn status(status: u16) -> Self {
        Self { status, ..Self::default() }
    }
    message_builders!("response");
}

/// What the upstream received: the request after the filter's edits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UpstreamRequest {
    pub method: String,
    pub path: String,
    pub authority: String,
    /// Regular headers (pseudo-headers are in the fields above), after the filter's edits.
    pub headers: Headers,
    pub body: Body,
    pub trailers: Headers,
}

impl UpstreamRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
    pub fn body_str(&self) -> &str {
        self.body.as_str()
    }
}

/// What the client received: a local reply or the upstream's response after the filter's edits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DownstreamResponse {
    /// 0 if nothing was sent (the stream is still paused, or was reset).
    pub status: u16,
    pub headers: Headers,
    pub body: Body,
    pub trailers: Headers,
    /// The filter reset the stream (`proxy_close_stream`) or replied after headers were sent.
    pub reset: bool,
}

impl DownstreamResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
    pub fn body_str(&self) -> &str {
        self.body.as_str()
    }
}

/// The outcome of one request through the filter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Exchange {
    /// The stream's context id in the guest.
    pub context_id: u32,
    /// `None` when the request never fully reached the upstream (local reply, reset, still paused).
    pub upstream: Option<UpstreamRequest>,
    pub downstream: DownstreamResponse,
    /// The `details` string of `proxy_send_local_response`, if the filter replied locally.
    pub local_reply_details: Option<String>,
    /// Both directions finished and the context was torn down (`proxy_on_log`, `proxy_on_done`).
    pub complete: bool,
    /// Every `http_call`/gRPC call this stream's context made.
    pub calls: Vec<super::OutboundCall>,
    /// Guest log lines produced while this exchange ran.
    pub logs: Vec<super::LogLine>,
    /// What the guest set as filter state (`wasm.<path>`), read as text.
    pub filter_state: std::collections::BTreeMap<String, String>,
}

/// Header-like fields in JSON: a list of `[name, value]` pairs (order and repeats kept) or, more
/// conveniently, an object `{"name": "value"}`.
fn pairs_or_object<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Headers, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Pairs(Headers),
        Object(serde_json::Map<String, serde_json::Value>),
    }
    match Form::deserialize(de)? {
        Form::Pairs(pairs) => Ok(pairs),
        Form::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(v) => Ok((k, v)),
                other => {
                    Err(serde::de::Error::custom(format!("header {k:?}: expected a string, got {other}")))
                }
            })
            .collect(),
    }
}

fn find_header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Splits `:pseudo` headers out of a guest-side map, for the records above.
pub(crate) fn split_pseudo(pairs: &[(Vec<u8>, Vec<u8>)]) -> (Vec<(String, String)>, Headers) {
    let mut pseudo = Vec::new();
    let mut regular = Vec::new();
    for (k, v) in pairs {
        let pair = (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned());
        if k.first() == Some(&b':') {
            pseudo.push(pair);
        } else {
            regular.push(pair);
        }
    }
    (pseudo, regular)
}

pub(crate) fn to_headers(pairs: &[(Vec<u8>, Vec<u8>)]) -> Headers {
    pairs
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

pub(crate) fn to_pairs(headers: &Headers) -> super::abi::Pairs {
    headers.iter().map(|(k, v)| (k.to_ascii_lowercase().into_bytes(), v.clone().into_bytes())).collect()
}

//! The AI gateway under test for provider faults: an Envoy routing an OpenAI-format client to a faulty
//! OpenAI and a faulty Anthropic provider by the filter's cluster header, and checks of what the client got.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use serde_json::{json, Value};
use tollgate_harness::envoy::Envoy;
use tollgate_harness::mock_llm::{echo_text, MockLlm, ProviderKind};

use super::client::{self, Ending, Received};
use super::listener;
use super::provider::{Fault, FaultyProvider};

/// One model per provider: OpenAI's wire format, and Anthropic's (translated both ways).
pub const MODELS: [&str; 2] = ["gpt-4o", "claude-sonnet-4-5"];
const CLUSTER_HEADER: &str = "x-tollgate-cluster";
/// How long the client waits for a byte before it counts as hung.
const CLIENT_PATIENCE: Duration = Duration::from_secs(5);
/// The user's words; the mocks stream the reply one word per event.
const WORDS: &str = "one two three four five six";

pub struct Gateway {
    pub envoy: Envoy,
    /// The OpenAI provider, then the Anthropic one.
    providers: [FaultyProvider; 2],
}

impl Gateway {
    /// The gateway on the launcher's listener; with `idle`, also on a listener whose route cuts a response
    /// that is idle that long ([`listener::with_idle_timeout_listener`]).
    pub fn start(idle: Option<Duration>) -> Result<Gateway> {
        let openai = FaultyProvider::start(MockLlm::new(ProviderKind::OpenAi, "openai-key"))?;
        let claude = FaultyProvider::start(MockLlm::new(ProviderKind::Anthropic, "anthropic-key"))?;
        let config = json!({"ai": {
            "providers": [
                {"name": "openai", "kind": "openai", "cluster": "mock_openai", "api_key": "openai-key"},
                {"name": "claude", "kind": "anthropic", "cluster": "mock_claude", "api_key": "anthropic-key"}
            ],
            "models": [{"name": "gpt-4o", "provider": "openai"}, {"name": "claude-*", "provider": "claude"}],
            "cluster_header": CLUSTER_HEADER
        }})
        .to_string();
        let mut builder = Envoy::builder(config.clone())
            .route_by_header(CLUSTER_HEADER)
            .cluster("mock_openai", openai.addr())
            .cluster("mock_claude", claude.addr());
        if let Some(idle) = idle {
            builder = listener::with_idle_timeout_listener(builder, &config, CLUSTER_HEADER, idle);
        }
        Ok(Gateway { envoy: builder.start()?, providers: [openai, claude] })
    }

    /// An OpenAI chat request for `model` to the listener at `addr`, asking the provider for `fault`.
    pub fn chat(
        &self,
        addr: SocketAddr,
        model: &str,
        fault: impl Into<Option<Fault>>,
        stream: bool,
    ) -> Result<Received> {
        let fault = fault.into();
        let text = match fault {
            Some(fault) => format!("{WORDS} {}", fault.marker()),
            None => WORDS.to_owned(),
        };
        let body = json!({"model": model, "stream": stream, "max_tokens": 64,
                          "messages": [{"role": "user", "content": text}]});
        let received = client::post(addr, "/v1/chat/completions", &[], &body.to_string(), CLIENT_PATIENCE)?;
        ensure!(received.ending != Ending::Hung, "{model}: the client hung: {received:?}");
        if let Some(fault) = fault {
            // The fault was the provider's: the request reached it.
            let provider = &self.providers[usize::from(!model.starts_with("gpt"))];
            let asked = provider.received().iter().any(|r| r.body_text().contains(fault.marker()));
            ensure!(asked, "{model}: the provider never got the request for {fault:?}");
        }
        Ok(received)
    }

    /// A plain chat request on the launcher's listener gets the provider's whole answer.
    pub fn chat_completes(&self, model: &str) -> Result<()> {
        let received = self.chat(self.envoy.listener_addr(), model, None, false)?;
        let answer = &received.answer;
        ensure!(answer.status == 200 && received.ending == Ending::Complete, "{model}: {received:?}");
        let completion = answer.json()?;
        ensure!(completion["object"] == "chat.completion", "{model}: {completion}");
        ensure!(completion["choices"][0]["message"]["content"] == echo_text(WORDS), "{model}: {completion}");
        Ok(())
    }

    /// A streamed chat request on the launcher's listener gets the whole stream.
    pub fn stream_completes(&self, model: &str) -> Result<()> {
        full_stream(&self.chat(self.envoy.listener_addr(), model, None, true)?, model)
    }
}

/// The text of a stream's content deltas, joined.
fn streamed_text(received: &Received) -> String {
    received
        .data_events()
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

/// A complete OpenAI stream of the reply: every word, a finish reason, `[DONE]` last, properly ended.
pub fn full_stream(received: &Received, model: &str) -> Result<()> {
    let answer = &received.answer;
    ensure!(answer.status == 200 && received.ending == Ending::Complete, "{model}: {received:?}");
    ensure!(answer.header("content-type") == Some("text/event-stream"), "{model}: {received:?}");
    let events = received.data_events();
    ensure!(events.last() == Some(&"[DONE]"), "{model}: the stream does not end with [DONE]: {received:?}");
    ensure!(streamed_text(received) == echo_text(WORDS), "{model}: {received:?}");
    ensure!(answer.body.contains("\"finish_reason\":\"stop\""), "{model}: no finish reason: {received:?}");
    Ok(())
}

/// A stream cut short by `fault` after its 200 left: the events translated so far (the role and some of
/// the words, each a whole event), no `[DONE]`, and a connection that ends without the chunked terminator,
/// which is how Envoy resets a response that has started; no error event, since the filter is never told.
pub fn cut_stream(received: &Received, fault: Fault) -> Result<()> {
    let answer = &received.answer;
    ensure!(answer.status == 200, "{fault:?}: {received:?}");
    ensure!(answer.header("content-type") == Some("text/event-stream"), "{fault:?}: {received:?}");
    ensure!(
        matches!(received.ending, Ending::CutShort(_)),
        "{fault:?}: the stream ended cleanly: {received:?}"
    );
    let events = received.data_events();
    ensure!(!events.contains(&"[DONE]"), "{fault:?}: {received:?}");
    for data in &events {
        serde_json::from_str::<Value>(data).with_context(|| format!("{fault:?}: a broken event {data:?}"))?;
    }
    let so_far = streamed_text(received);
    let full = echo_text(&format!("{WORDS} {}", fault.marker()));
    ensure!(!so_far.is_empty() && full.starts_with(&so_far) && so_far != full, "{fault:?}: got {so_far:?}");
    Ok(())
}

/// An error in OpenAI's shape with `status`, `reason` in `x-tollgate-reason` and `code` in the body.
pub fn openai_error(received: &Received, status: u16, reason: &str, code: Option<&str>) -> Result<()> {
    let answer = &received.answer;
    ensure!(answer.status == status && received.ending == Ending::Complete, "{reason}: {received:?}");
    let (kind, body_code) = answer.openai_error().with_context(|| format!("{reason}: {received:?}"))?;
    ensure!(kind == "upstream_error", "{reason}: {received:?}");
    ensure!(body_code == code.unwrap_or_default(), "{reason}: {received:?}");
    ensure!(answer.header("x-tollgate-reason") == Some(reason), "{reason}: {received:?}");
    ensure!(answer.json()?["error"]["code"] == json!(code), "{reason}: {received:?}");
    Ok(())
}

//! A stand-in provider with a tiny wire format of its own, so the gateway is tested apart from real ones.
//!
//! Request: `POST <base>/generate` `{"model","turns"}`, credential in `x-stub-key`; `seed` is dropped.
//! Answer: `{"text","in","out"}`. Stream events: `{"text"}` per chunk, `{"in","out"}` last; `"boom"` fails.

use serde_json::{json, Value};

use crate::adapter::{
    Adapter, ChunkSink, ProviderSettings, StreamTranslator, Target, Translated, UpstreamRequest,
};
use crate::chat::{ChatRequest, ChunkChoice, Delta, FinishReason};
use crate::sse::SseEvent;
use crate::{AiError, Usage};

#[derive(Debug)]
pub struct StubAdapter(pub ProviderSettings);

impl Adapter for StubAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let body = json!({ "model": target.upstream_model, "turns": req.messages.len() });
        Ok(UpstreamRequest {
            path: format!("{}/generate", self.0.base_path),
            headers: vec![("x-stub-key".into(), self.0.api_key.clone().unwrap_or_default())],
            body: body.to_string().into_bytes(),
            dropped: req.seed.iter().map(|_| "seed".to_string()).collect(),
        })
    }

    fn chat_response(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| AiError::BadUpstreamResponse(e.to_string()))?;
        let usage = usage_of(&v);
        let out = json!({
            "id": format!("chatcmpl-{}", target.request_id), "object": "chat.completion",
            "created": target.created, "model": target.upstream_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": v["text"]}, "finish_reason": "stop"}],
            "usage": usage.to_openai(),
        });
        Ok(Translated { body: out.to_string().into_bytes(), usage })
    }

    fn stream_translator(&self, _target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(StubStream::default())
    }
}

fn usage_of(v: &Value) -> Usage {
    Usage {
        input_tokens: v["in"].as_u64().unwrap_or(0),
        output_tokens: v["out"].as_u64().unwrap_or(0),
        ..Usage::default()
    }
}

#[derive(Debug, Default)]
struct StubStream {
    usage: Usage,
    ended: bool,
}

impl StreamTranslator for StubStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut ChunkSink) -> Result<(), AiError> {
        if event.data == "boom" {
            return Err(AiError::BadUpstreamResponse("boom".into()));
        }
        let v: Value =
            serde_json::from_str(&event.data).map_err(|e| AiError::BadUpstreamResponse(e.to_string()))?;
        if let Some(text) = v["text"].as_str() {
            let delta = Delta { content: Some(text.to_string()), ..Delta::default() };
            out.chunk(vec![ChunkChoice { index: 0, delta, finish_reason: None }]);
        } else {
            self.usage = usage_of(&v);
            self.ended = true;
            out.chunk(vec![ChunkChoice {
                index: 0,
                delta: Delta::default(),
                finish_reason: Some(FinishReason::Stop),
            }]);
        }
        Ok(())
    }

    fn ended(&self) -> bool {
        self.ended
    }

    fn finish(&mut self, _out: &mut ChunkSink) -> Result<(), AiError> {
        if self.ended {
            Ok(())
        } else {
            Err(AiError::TruncatedStream)
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

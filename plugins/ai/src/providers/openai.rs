//! OpenAI (`kind: openai`) and the servers that copy its API (`kind: openai_compatible`: Groq, DeepSeek,
//! Together, Ollama, vLLM, llama.cpp server). The client's request is sent nearly as is.

use super::openai_wire::{
    bearer, chat_body, developer_as_system, embeddings_body, json_headers, read_error, read_response,
    rename_field, request_stream_usage, to_bytes, Body, PassThroughStream,
};
use crate::adapter::{
    Adapter, EmbeddingsRequest, ProviderSettings, StreamTranslator, Target, Translated, UpstreamRequest,
};
use crate::chat::ChatRequest;
use crate::AiError;

#[derive(Debug)]
pub struct OpenAiAdapter {
    settings: ProviderSettings,
    /// A compatible server rather than OpenAI: older field names, no `developer` role.
    compatible: bool,
}

impl OpenAiAdapter {
    pub fn new(settings: ProviderSettings, compatible: bool) -> Self {
        OpenAiAdapter { settings, compatible }
    }

    fn upstream(&self, endpoint: &str, body: Body) -> UpstreamRequest {
        UpstreamRequest {
            path: format!("{}/{endpoint}", self.settings.base_path),
            headers: json_headers(bearer(self.settings.api_key.as_deref())),
            body: to_bytes(body),
            dropped: Vec::new(),
        }
    }
}

impl Adapter for OpenAiAdapter {
    fn chat_request(&self, req: &ChatRequest, target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        let mut body = chat_body(req)?;
        body.insert("model".into(), target.upstream_model.into());
        if self.compatible {
            // vLLM, Ollama and llama.cpp read only `max_tokens`; OpenAI deprecated it for the new name.
            rename_field(&mut body, "max_completion_tokens", "max_tokens");
            developer_as_system(&mut body);
        }
        // Compatible servers get stream_options too: vLLM, Ollama, Groq, DeepSeek and llama.cpp all honour
        // it, and without it a stream's usage (and so its budget) would be unknown.
        request_stream_usage(&mut body);
        Ok(self.upstream("chat/completions", body))
    }

    fn chat_response(&self, body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        read_response(body)
    }

    fn stream_translator(&self, target: &Target<'_>) -> Box<dyn StreamTranslator> {
        Box::new(PassThroughStream::new(target))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, AiError> {
        let mut body = embeddings_body(req)?;
        body.insert("model".into(), target.upstream_model.into());
        Ok(self.upstream("embeddings", body))
    }

    fn embeddings_response(&self, body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        read_response(body)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> AiError {
        read_error(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn settings(api_key: Option<&str>) -> ProviderSettings {
        ProviderSettings {
            name: "p".into(),
            base_path: "/v1".into(),
            api_key: api_key.map(str::to_string),
            ..ProviderSettings::default()
        }
    }

    fn target() -> Target<'static> {
        Target { upstream_model: "gpt-4o-mini", client_model: "fast", created: 1, request_id: "r" }
    }

    fn send(adapter: &OpenAiAdapter, request: Value) -> (UpstreamRequest, Value) {
        let req: ChatRequest = serde_json::from_value(request).unwrap();
        let up = adapter.chat_request(&req, &target()).unwrap();
        let body = serde_json::from_slice(&up.body).unwrap();
        (up, body)
    }

    fn header<'a>(up: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
        up.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn openai_keeps_the_request_and_swaps_the_model() {
        let adapter = OpenAiAdapter::new(settings(Some("sk")), false);
        let request = json!({"model": "fast", "messages": [{"role": "developer", "content": "be brief"}],
            "max_completion_tokens": 5, "logprobs": true, "presence_penalty": 0.5});
        let (up, body) = send(&adapter, request);
        assert_eq!(up.path, "/v1/chat/completions");
        assert_eq!(header(&up, "authorization"), Some("Bearer sk"));
        assert_eq!(header(&up, "content-type"), Some("application/json"));
        assert_eq!(
            body,
            json!({"model": "gpt-4o-mini", "messages": [{"role": "developer", "content": "be brief"}],
                "max_completion_tokens": 5, "logprobs": true, "presence_penalty": 0.5})
        );
        assert!(up.dropped.is_empty());
    }

    #[test]
    fn streams_always_ask_for_usage() {
        let adapter = OpenAiAdapter::new(settings(Some("sk")), false);
        let (_, body) = send(&adapter, json!({"model": "m", "messages": [], "stream": true}));
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        let (_, body) = send(
            &adapter,
            json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_usage": false}}),
        );
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        let (_, body) = send(&adapter, json!({"model": "m", "messages": []}));
        assert!(body.get("stream_options").is_none());
    }

    #[test]
    fn compatible_servers_get_max_tokens_and_system() {
        let adapter =
            OpenAiAdapter::new(ProviderSettings { base_path: "/openai/v1".into(), ..settings(None) }, true);
        let (up, body) = send(
            &adapter,
            json!({"model": "m", "messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}],
                "max_completion_tokens": 7, "max_tokens": 100}),
        );
        assert_eq!(up.path, "/openai/v1/chat/completions");
        assert_eq!(header(&up, "authorization"), None);
        assert_eq!(body["max_tokens"], 7);
        assert!(body.get("max_completion_tokens").is_none());
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["role"], "user");
    }

    #[test]
    fn compatible_servers_with_a_key_get_a_bearer() {
        let adapter = OpenAiAdapter::new(settings(Some("gsk")), true);
        let (up, _) = send(&adapter, json!({"model": "m", "messages": []}));
        assert_eq!(header(&up, "authorization"), Some("Bearer gsk"));
    }

    #[test]
    fn embeddings_go_to_embeddings_with_the_upstream_model() {
        let adapter = OpenAiAdapter::new(settings(Some("sk")), false);
        let req: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "fast", "input": ["a", "b"], "dimensions": 256})).unwrap();
        let up = adapter.embeddings_request(&req, &target()).unwrap();
        assert_eq!(up.path, "/v1/embeddings");
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body, json!({"model": "gpt-4o-mini", "input": ["a", "b"], "dimensions": 256}));
        let answer =
            br#"{"object":"list","data":[],"model":"x","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        let translated = adapter.embeddings_response(answer, &target()).unwrap();
        assert_eq!(translated.usage.input_tokens, 4);
        assert_eq!(translated.body, answer.to_vec());
    }

    #[test]
    fn responses_pass_through_byte_for_byte() {
        let adapter = OpenAiAdapter::new(settings(Some("sk")), false);
        let answer = br#"{"id":"c","object":"chat.completion","created":2,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        let translated = adapter.chat_response(answer, &target()).unwrap();
        assert_eq!(translated.body, answer.to_vec());
        assert_eq!((translated.usage.input_tokens, translated.usage.output_tokens), (3, 4));
        assert_eq!((translated.usage.cached_input_tokens, translated.usage.reasoning_tokens), (1, 2));
        assert!(matches!(adapter.chat_response(b"<html>", &target()), Err(AiError::BadUpstreamResponse(_))));
    }
}

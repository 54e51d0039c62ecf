//! Every provider adapter the AI gateway has (openai, azure, anthropic, gemini, mistral, openai_compatible,
//! bedrock),
//! in every direction it translates:
//!
//! * 0: an OpenAI chat request (JSON, parsed as the gateway parses it) → the provider's request;
//! * 1: the provider's chat response (JSON) → an OpenAI `chat.completion`;
//! * 2: the provider's stream (SSE, or Bedrock's binary event stream) → OpenAI chunks, the bytes arriving in
//!   pieces whose sizes follow from the second byte, then the usage chunk and `[DONE]` as the gateway writes them;
//! * 3: a provider error answer (status from the second byte, any body) → the client's error;
//! * 4: an OpenAI embeddings request → the provider's; 5: the provider's embeddings answer → OpenAI's.
//!
//! The first byte picks the provider (`% 7`) and the direction (`/ 7 % 6`); the rest is the payload (after
//! the second byte for 2, 3 and 5).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tollgate_ai::chat::ChatRequest;
use tollgate_ai::providers::{AwsCredentials, ProviderKind};
use tollgate_ai::{Adapter, ChunkSink, EmbeddingsRequest, ProviderSettings, Target};
use tollgate_fuzz::pieces;

const KINDS: [ProviderKind; 7] = [
    ProviderKind::Openai,
    ProviderKind::Azure,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
    ProviderKind::Mistral,
    ProviderKind::OpenaiCompatible,
    ProviderKind::Bedrock,
];

fn adapter(kind: ProviderKind) -> Box<dyn Adapter> {
    let mut deployments = BTreeMap::new();
    deployments.insert("gpt-4o".to_string(), "prod-gpt4o".to_string());
    kind.adapter(ProviderSettings {
        name: "upstream".into(),
        base_path: "/v1".into(),
        api_key: Some("provider-key".into()),
        api_version: None,
        deployments,
        default_max_tokens: 1024,
        authority: "upstream.example".into(),
        aws: Some(AwsCredentials {
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "fuzz-secret".into(),
            session_token: None,
        }),
    })
}

fn target(model: &str) -> Target<'_> {
    Target { upstream_model: model, client_model: "client-model", created: 1_700_000_000, request_id: "fuzz" }
}

/// The stream as `LiveStream::feed` drives it: events translated as they complete, then the end.
fn stream(adapter: &dyn Adapter, body: &[u8], seed: u8) {
    let target = target("gpt-4o");
    let mut translator = adapter.stream_translator(&target);
    let mut sink = ChunkSink::new(&target);
    let mut parser = adapter.stream_decoder(1 << 20);
    for piece in pieces(body, seed) {
        if parser.push_events(piece, &mut |event| translator.on_event(event, &mut sink)).is_err() {
            return;
        }
        let _ = sink.take();
    }
    if parser.finish_events(&mut |event| translator.on_event(event, &mut sink)).is_err() {
        return;
    }
    if translator.finish(&mut sink).is_ok() {
        sink.usage_chunk(&translator.usage());
        sink.done();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    let adapter = adapter(KINDS[usize::from(selector % 7)]);
    let direction = selector / 7 % 6;
    let (second, rest) = payload.split_first().map_or((0, &[][..]), |(b, rest)| (*b, rest));
    let outcome = match direction {
        0 => match serde_json::from_slice::<ChatRequest>(payload) {
            Ok(request) => adapter.chat_request(&request, &target(&request.model)).map(drop),
            Err(_) => return,
        },
        1 => adapter.chat_response(payload, &target("gpt-4o")).map(drop),
        2 => {
            stream(adapter.as_ref(), rest, second);
            return;
        }
        3 => {
            let status =
                [200, 400, 401, 403, 404, 413, 422, 429, 500, 503, 529, 0, 99, 600][usize::from(second) % 14];
            Err(adapter.error_response(status, rest))
        }
        4 => match serde_json::from_slice::<EmbeddingsRequest>(payload) {
            Ok(request) => adapter.embeddings_request(&request, &target(&request.model)).map(drop),
            Err(_) => return,
        },
        _ => {
            let format = [None, Some("float"), Some("base64"), Some("")][usize::from(second % 4)];
            let request = EmbeddingsRequest {
                model: "text-embedding-3-small".into(),
                input: serde_json::json!(["a", "b"]),
                encoding_format: format.map(str::to_string),
                ..EmbeddingsRequest::default()
            };
            adapter.embeddings_response_for(&request, rest, &target("text-embedding-3-small")).map(drop)
        }
    };
    if let Err(error) = outcome {
        let _ = (error.status(), error.to_openai_json(), error.to_reply());
    }
});

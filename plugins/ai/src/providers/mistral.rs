//! PLACEHOLDER: the mistral wire format (being written).

use super::todo_translator;
use crate::adapter::{Adapter, ProviderSettings, StreamTranslator, Target, Translated, UpstreamRequest};
use crate::chat::ChatRequest;
use crate::AiError;

#[derive(Debug)]
pub struct MistralAdapter {
    settings: ProviderSettings,
}

impl MistralAdapter {
    pub fn new(settings: ProviderSettings) -> Self {
        MistralAdapter { settings }
    }
}

impl Adapter for MistralAdapter {
    fn chat_request(&self, _req: &ChatRequest, _target: &Target<'_>) -> Result<UpstreamRequest, AiError> {
        Err(AiError::BadUpstreamResponse(format!("{}: not yet", self.settings.name)))
    }

    fn chat_response(&self, _body: &[u8], _target: &Target<'_>) -> Result<Translated, AiError> {
        Err(AiError::BadUpstreamResponse("not yet".into()))
    }

    fn stream_translator(&self, _target: &Target<'_>) -> Box<dyn StreamTranslator> {
        todo_translator()
    }
}

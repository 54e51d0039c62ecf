//! Turning a request to a prompt endpoint into the OpenAI chat-completions request the AI plugin routes.

use serde_json::Map;
use tollgate_ai::chat::{ChatRequest, Content, JsonSchemaFormat, Message, ResponseFormat};

use crate::decorators::Decorators;
use crate::endpoints::Endpoint;
use crate::error::PromptError;
use crate::output::Output;
use crate::variables::Values;
use crate::versions::Version;

/// A prompt request ready to send: the chat request and the version it was rendered from.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub request: ChatRequest,
    /// The chosen version's name, for the response body, logs and metrics.
    pub version: String,
}

impl Prepared {
    /// The chat request as the JSON body the AI plugin reads.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.request).unwrap_or_default()
    }
}

impl Endpoint {
    /// Everything between the client's body and the chat request: validate the variables (all problems at
    /// once), pick the version for `request_id`, render it, and add the decorators of the endpoint's path.
    /// The caller must not decorate the result again.
    pub fn prepare(
        &self,
        body: &[u8],
        request_id: &str,
        decorators: &Decorators,
    ) -> Result<Prepared, PromptError> {
        let values = self.variables.validate(body)?;
        let version = self.versions.select(request_id);
        let mut request = self.render(version, &values);
        decorators.apply(&self.path, &mut request);
        Ok(Prepared { request, version: version.name.clone() })
    }

    /// The chat request for one version and validated values. Each configured message yields exactly one
    /// message with its configured role, whatever the values contain.
    pub fn render(&self, version: &Version, values: &Values) -> ChatRequest {
        let messages = version
            .messages
            .iter()
            .map(|m| Message {
                role: m.role,
                content: Some(Content::Text(m.template.render(values))),
                name: None,
                tool_calls: None,
                tool_call_id: None,
                extra: Map::new(),
            })
            .collect();
        let response_format = match &self.output {
            Output::Text => None,
            Output::Json(schema) => Some(ResponseFormat {
                kind: "json_schema".into(),
                json_schema: Some(JsonSchemaFormat {
                    name: self.operation_id.clone(),
                    description: self.description.clone(),
                    schema: Some(schema.as_json().clone()),
                    // OpenAI refuses `strict` for schemas outside its strict subset; the answer is checked
                    // here either way.
                    strict: Some(schema.is_strict_compatible()),
                }),
            }),
        };
        ChatRequest {
            model: self.model.clone(),
            messages,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            response_format,
            ..ChatRequest::default()
        }
    }
}

#[cfg(test)]
mod tests;

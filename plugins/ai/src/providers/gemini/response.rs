//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`. The types here also read each event of a
//! stream, which is a fragment of the same shape.

use serde::Deserialize;
use serde_json::Value;

use super::embedded_error;
use crate::adapter::{Target, Translated};
use crate::chat::{AssistantMessage, ChatCompletion, Choice, FinishReason, FunctionCall, ToolCall};
use crate::{AiError, Usage};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateResponse {
    #[serde(default)]
    pub candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub content: Option<CandidateContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
}

/// A candidate stopped before any output (or by a filter) comes with `content: {role}` and no `parts`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CandidateContent {
    #[serde(default)]
    pub parts: Option<Vec<Part>>,
}

/// One part; kinds other than text and function calls (code execution, generated images) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default)]
    pub function_call: Option<GeminiCall>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct GeminiCall {
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
    /// Newer models name their calls; most do not.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// Gemini counts thinking apart from the answer; OpenAI counts it inside completion tokens. Tool-use
    /// prompt tokens (results of built-in tools fed back to the model) are billed as input, so they count there.
    pub fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_token_count.saturating_add(self.tool_use_prompt_token_count),
            output_tokens: self.candidates_token_count.saturating_add(self.thoughts_token_count),
            cached_input_tokens: self.cached_content_token_count,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

impl GenerateResponse {
    /// Reads one response (or stream event). An `{"error":...}` object in a 2xx body is the provider's error.
    pub fn parse(data: &[u8]) -> Result<GenerateResponse, AiError> {
        let value: Value = serde_json::from_slice(data)
            .map_err(|e| AiError::BadUpstreamResponse(format!("Gemini sent invalid JSON: {e}")))?;
        if let Some(error) = embedded_error(&value, data) {
            return Err(error);
        }
        serde_json::from_slice(data).map_err(|e| {
            let path = tollgate_core::json_error_path(data, &e);
            AiError::BadUpstreamResponse(format!("Gemini response at `{path}`: {e}"))
        })
    }

    pub fn candidates(&self) -> &[Candidate] {
        self.candidates.as_deref().unwrap_or_default()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage_metadata.as_ref().map(UsageMetadata::to_usage)
    }

    pub fn blocked(&self) -> bool {
        self.prompt_feedback.as_ref().is_some_and(|f| f.block_reason.is_some())
    }
}

impl Candidate {
    pub fn parts(&self) -> &[Part] {
        self.content.as_ref().and_then(|c| c.parts.as_deref()).unwrap_or_default()
    }

    /// The candidate's own index, else its position (Gemini leaves `index` out when there is one candidate).
    pub fn index_or(&self, position: usize) -> u32 {
        self.index.unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX))
    }
}

impl Part {
    /// Visible text: thought summaries are hidden reasoning, not part of the answer.
    pub fn answer_text(&self) -> Option<&str> {
        if self.thought == Some(true) {
            return None;
        }
        self.text.as_deref().filter(|t| !t.is_empty())
    }

    /// A thought summary's text (present when the request asked for `includeThoughts`).
    pub fn thought_text(&self) -> Option<&str> {
        self.text.as_deref().filter(|t| self.thought == Some(true) && !t.is_empty())
    }
}

impl GeminiCall {
    /// OpenAI's `arguments` text.
    pub fn arguments(&self) -> String {
        self.args.as_ref().map_or_else(|| "{}".to_string(), Value::to_string)
    }
}

/// Gemini gives calls no ids (or only sometimes), and OpenAI clients need one to answer each call, so they
/// are made up deterministically: `call_<response id>_<n>`, counting across the whole response.
#[derive(Clone, Debug)]
pub(super) struct CallIds {
    key: String,
    next: u64,
}

impl CallIds {
    pub fn new(key: &str) -> CallIds {
        CallIds { key: key.to_string(), next: 0 }
    }

    pub fn id_for(&mut self, call: &GeminiCall) -> String {
        if let Some(id) = call.id.as_ref().filter(|id| !id.is_empty()) {
            return id.clone();
        }
        let id = format!("call_{}_{}", self.key, self.next);
        self.next = self.next.saturating_add(1);
        id
    }
}

/// Gemini's `finishReason` in OpenAI's terms. A natural stop after calling functions is OpenAI's `tool_calls`.
pub(super) fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        _ if called_tools => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

pub(super) fn completion(body: &[u8], target: &Target<'_>) -> Result<Translated, AiError> {
    let response = GenerateResponse::parse(body)?;
    let key = response.response_id.as_deref().unwrap_or(target.request_id);
    let mut ids = CallIds::new(key);
    let mut choices: Vec<Choice> =
        response.candidates().iter().enumerate().map(|(i, c)| choice(c, i, &mut ids)).collect();
    if choices.is_empty() {
        // A prompt Gemini blocked is answered 200 with `promptFeedback` and no candidates. It becomes an empty
        // `content_filter` completion rather than a 400: the request itself was valid, Gemini still bills the
        // prompt tokens (so usage must reach budgets), and OpenAI clients already handle that finish reason.
        if !response.blocked() {
            return Err(AiError::BadUpstreamResponse("Gemini returned no candidates".into()));
        }
        choices.push(Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: Some(String::new()),
                reasoning_content: None,
                tool_calls: None,
            },
            finish_reason: Some(FinishReason::ContentFilter),
        });
    }
    let usage = response.usage().unwrap_or_default();
    let completion = ChatCompletion {
        id: format!("chatcmpl-{key}"),
        object: "chat.completion".into(),
        created: target.created,
        model: response.model_version.clone().unwrap_or_else(|| target.upstream_model.to_string()),
        choices,
        usage: Some(usage.to_openai()),
    };
    let body = serde_json::to_vec(&completion)
        .map_err(|e| AiError::BadUpstreamResponse(format!("could not encode the completion: {e}")))?;
    Ok(Translated { body, usage })
}

fn choice(candidate: &Candidate, position: usize, ids: &mut CallIds) -> Choice {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in candidate.parts() {
        if let Some(thought) = part.thought_text() {
            reasoning.push_str(thought);
        } else if let Some(call) = &part.function_call {
            calls.push(ToolCall {
                id: ids.id_for(call),
                kind: "function".into(),
                function: FunctionCall { name: call.name.clone(), arguments: call.arguments() },
            });
        } else if let Some(t) = part.answer_text() {
            text.push_str(t);
        }
    }
    let finish = candidate.finish_reason.as_deref().map(|r| finish_reason(r, !calls.is_empty()));
    Choice {
        index: candidate.index_or(position),
        message: AssistantMessage {
            role: "assistant".into(),
            // OpenAI sends `content: null` when the model only called tools.
            content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
            reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            tool_calls: (!calls.is_empty()).then_some(calls),
        },
        finish_reason: finish,
    }
}

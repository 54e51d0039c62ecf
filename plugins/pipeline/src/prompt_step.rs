//! The prompt step of the chain: a request to a published prompt endpoint is validated and rendered by
//! tollgate-prompt, sent to its provider by the filter itself (the AI gateway translates both ways), and
//! answered from what came back: `{"result", "model", "version", "usage"}`, or the error. A JSON answer that
//! does not fit the endpoint's schema is asked for once more.

use std::time::Duration;

use tollgate_ai::PROVIDER_HEADER;
use tollgate_ai::{CallAnswer, Usage};
use tollgate_core::{LocalReply, OutboundCall, Ports, RequestHead};
use tollgate_prompt::{Endpoint, PromptConfig, Shaped};

/// Response header naming the template version that answered.
pub const VERSION_HEADER: &str = "x-tollgate-prompt-version";
/// Per endpoint and version: `tollgate_prompt.endpoint.<operation_id>.version.<version>.<event>`, where the
/// event is `requests`, `errors`, `retries`, `input_tokens`, `output_tokens` or `cost_micros`.
pub fn prompt_metric(endpoint: &str, version: &str, event: &str) -> String {
    format!("tollgate_prompt.endpoint.{endpoint}.version.{version}.{event}")
}

/// Attempts per request: the first, and one more when a JSON answer does not fit its schema.
const MAX_ATTEMPTS: u8 = 2;

/// One request to a prompt endpoint, between its phases.
#[derive(Debug)]
pub struct PromptState {
    endpoint: usize,
    request_id: String,
    version: String,
    /// The call in flight (kept to send again); `None` before it is sent and after the answer.
    call: Option<OutboundCall>,
    attempts: u8,
    used: Option<Usage>,
}

impl PromptState {
    /// Whether the stream waits for the provider's answer to this endpoint's call.
    pub fn awaiting_provider(&self) -> bool {
        self.call.is_some()
    }

    /// What every attempt used, for limits and budgets.
    pub fn used(&self) -> Option<Usage> {
        self.used
    }
}

/// What the prompt step makes of a request head.
pub enum PromptHead {
    /// Not a prompt endpoint (nor the OpenAPI document).
    Pass,
    /// Answered here: the OpenAPI document, or an endpoint path with the wrong method.
    Reply(LocalReply),
    /// A request to an endpoint: its body is needed.
    Endpoint(Box<PromptState>),
}

pub fn head(prompt: &PromptConfig, head: &RequestHead) -> PromptHead {
    if let Some(reply) = prompt.openapi_reply(&head.method, &head.path) {
        return PromptHead::Reply(reply);
    }
    let found = match prompt.endpoints.route(&head.method, &head.path) {
        Ok(found) => found,
        Err(error) => return PromptHead::Reply(error.to_reply()),
    };
    let Some(index) = found.and_then(|e| prompt.endpoints.iter().position(|other| std::ptr::eq(e, other)))
    else {
        return PromptHead::Pass;
    };
    PromptHead::Endpoint(Box::new(PromptState {
        endpoint: index,
        request_id: head.headers.get("x-request-id").unwrap_or_default().to_string(),
        version: String::new(),
        call: None,
        attempts: 0,
        used: None,
    }))
}

fn endpoint<'p>(prompt: &'p PromptConfig, state: &PromptState) -> Option<&'p Endpoint> {
    prompt.endpoints.iter().nth(state.endpoint)
}

/// The client's variables arrived: the rendered chat request's body (which limits and model scopes judge),
/// or the 400 listing every problem.
pub fn prepare(prompt: &PromptConfig, state: &mut PromptState, body: &[u8]) -> Result<Vec<u8>, LocalReply> {
    let Some(endpoint) = endpoint(prompt, state) else {
        return Err(tollgate_prompt::PromptError::NoOutput("the endpoint is gone".into()).to_reply());
    };
    let prepared = endpoint.prepare(body, &state.request_id, &prompt.decorators).map_err(|e| e.to_reply())?;
    state.version = prepared.version.clone();
    Ok(prepared.body())
}

/// How long the endpoint's provider call may take.
pub fn call_timeout(prompt: &PromptConfig, state: &PromptState) -> Duration {
    endpoint(prompt, state).map_or(Duration::from_millis(tollgate_prompt::DEFAULT_TIMEOUT_MS), |e| e.timeout)
}

/// The call is on its way.
pub fn sent(state: &mut PromptState, call: OutboundCall) -> OutboundCall {
    state.attempts = state.attempts.saturating_add(1);
    state.call = Some(call.clone());
    call
}

/// What to do with the provider's answer.
pub enum PromptAnswer {
    /// Send the same call again (the answer did not fit the schema).
    Retry(OutboundCall),
    /// Answer the client.
    Reply(LocalReply),
}

/// The provider answered (translated to OpenAI's shape): the client's answer, or one more attempt.
pub fn answer(
    prompt: &PromptConfig,
    state: &mut PromptState,
    answer: CallAnswer,
    usage: Option<Usage>,
    cost: &dyn Fn(&str, &Usage) -> Option<u64>,
    ports: Ports<'_>,
) -> PromptAnswer {
    let call = state.call.take();
    let Some(endpoint) = endpoint(prompt, state) else {
        return PromptAnswer::Reply(
            tollgate_prompt::PromptError::NoOutput("the endpoint is gone".into()).to_reply(),
        );
    };
    let metric = |event: &str| prompt_metric(&endpoint.operation_id, &state.version, event);
    if let Some(usage) = usage {
        let count = |event: &str, n: u64| {
            ports.metrics.increment(&metric(event), i64::try_from(n).unwrap_or(i64::MAX))
        };
        count("input_tokens", usage.input_tokens);
        count("output_tokens", usage.output_tokens);
        if let Some(micros) = cost(&endpoint.model, &usage) {
            count("cost_micros", micros);
        }
        state.used = Some(match state.used {
            Some(before) => add(before, usage),
            None => usage,
        });
    }
    let shaped = match answer.status {
        200 => endpoint.shape_response(&state.version, &answer.body),
        _ => return finish(state, &metric, error_reply(answer), ports),
    };
    let body = match shaped {
        Ok(Shaped::SchemaMismatch(_)) if state.attempts < MAX_ATTEMPTS => {
            if let Some(call) = call {
                ports.metrics.increment(&metric("retries"), 1);
                state.attempts = state.attempts.saturating_add(1);
                state.call = Some(call.clone());
                return PromptAnswer::Retry(call);
            }
            Shaped::SchemaMismatch(String::new()).into_result()
        }
        Ok(shaped) => shaped.into_result(),
        Err(error) => Err(error),
    };
    let reply = match body {
        Ok(body) => {
            let mut reply = LocalReply::json(200, "tollgate_prompt", &body);
            reply.headers.push((VERSION_HEADER.into(), state.version.clone()));
            let provider = answer.headers.iter().find(|(n, _)| n == PROVIDER_HEADER);
            reply.headers.extend(provider.cloned());
            reply
        }
        Err(error) => error.to_reply(),
    };
    finish(state, &metric, reply, ports)
}

fn finish(
    state: &PromptState,
    metric: &dyn Fn(&str) -> String,
    reply: LocalReply,
    ports: Ports<'_>,
) -> PromptAnswer {
    ports.metrics.increment(&metric("requests"), 1);
    if reply.status != 200 {
        ports.metrics.increment(&metric("errors"), 1);
    }
    let mut reply = reply;
    if !state.version.is_empty() && !reply.headers.iter().any(|(n, _)| n == VERSION_HEADER) {
        reply.headers.push((VERSION_HEADER.into(), state.version.clone()));
    }
    PromptAnswer::Reply(reply)
}

/// A provider error, already in OpenAI's shape with its reason header: passed on as it is.
fn error_reply(answer: CallAnswer) -> LocalReply {
    let mut reply = LocalReply {
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
        details: String::new(),
    };
    reply.details = format!("tollgate_{}", reply.reason().unwrap_or("provider_error"));
    reply
}

fn add(a: Usage, b: Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.saturating_add(b.input_tokens),
        output_tokens: a.output_tokens.saturating_add(b.output_tokens),
        cached_input_tokens: a.cached_input_tokens.saturating_add(b.cached_input_tokens),
        reasoning_tokens: a.reasoning_tokens.saturating_add(b.reasoning_tokens),
    }
}

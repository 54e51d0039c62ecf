//! Prompt endpoints in the chain's phases: the head is claimed (or the OpenAPI document served), the body
//! is rendered before scopes and limits judge it, and the provider call and its answer replace the trip
//! through Envoy's router.

use tollgate_ai::Usage;
use tollgate_core::{BodyVerdict, CallOutcome, Callout, HeaderEdits, LocalReply, Ports, RequestHead};

use super::{AfterLimits, Pipeline, Stream};
use crate::limits;
use crate::prompt_step::{self, PromptAnswer, PromptHead};

impl Pipeline {
    /// How a request to a prompt endpoint (or for the OpenAPI document) goes on, and whether limits wait
    /// for its body; `Err` hands the edits back for a request the prompt step does not claim.
    pub(super) fn prompt_head(
        &self,
        stream: &mut Stream,
        head: &RequestHead,
        edits: HeaderEdits,
    ) -> Result<(AfterLimits, bool), HeaderEdits> {
        let (Some(prompt), Some(ai)) = (&self.prompt, &self.ai) else { return Err(edits) };
        match prompt_step::head(prompt, head) {
            PromptHead::Pass => Err(edits),
            PromptHead::Reply(reply) => Ok((AfterLimits::Reply(reply), false)),
            PromptHead::Endpoint(state) => {
                let consumer = stream.auth.authorized.as_ref().and_then(|a| a.consumer.as_ref());
                let consumer = consumer.map(|c| c.name.clone());
                ai.begin_call(&mut stream.ai, head, consumer.as_deref());
                stream.prompt = Some(*state);
                Ok((AfterLimits::AwaitBody(edits), true))
            }
        }
    }

    /// The variables of a prompt request, rendered into the chat request's body (`None`: not a prompt
    /// request); invalid variables are answered with every problem listed.
    pub(super) fn prompt_body(
        &self,
        stream: &mut Stream,
        body: &[u8],
        ports: Ports<'_>,
    ) -> Result<Option<Vec<u8>>, LocalReply> {
        let (Some(prompt), Some(state)) = (&self.prompt, stream.prompt.as_mut()) else { return Ok(None) };
        match prompt_step::prepare(prompt, state, body) {
            Ok(rendered) => {
                self.note(stream, |_| "prompt:render".to_string());
                Ok(Some(rendered))
            }
            Err(reply) => Err(self.answered(stream, "prompt", reply, ports)),
        }
    }

    /// The request passed every check: the filter sends its rendered body to the provider itself.
    pub(super) fn prompt_call(&self, stream: &mut Stream, body: &[u8], ports: Ports<'_>) -> BodyVerdict {
        let (Some(ai), Some(prompt), Some(state)) = (&self.ai, &self.prompt, stream.prompt.as_mut()) else {
            return BodyVerdict::pass();
        };
        let timeout = prompt_step::call_timeout(prompt, state);
        match ai.outbound_call(&mut stream.ai, body, timeout, ports) {
            Ok(call) => {
                let call = prompt_step::sent(state, call);
                self.note(stream, |_| format!("prompt:call {}", call.cluster));
                BodyVerdict::Call(Callout::Http(call))
            }
            Err(error) => {
                if let Some(limits) = &self.ratelimit {
                    limits::release(limits, &mut stream.limits, None, ports);
                }
                BodyVerdict::Respond(self.answered(stream, "prompt", error.to_reply(), ports))
            }
        }
    }

    /// The provider answered the prompt call (or did not): the client's answer, or one more attempt.
    pub(super) fn prompt_answer(
        &self,
        stream: &mut Stream,
        outcome: &CallOutcome,
        ports: Ports<'_>,
    ) -> BodyVerdict {
        let (Some(ai), Some(prompt)) = (&self.ai, &self.prompt) else { return BodyVerdict::pass() };
        let answer = ai.call_answer(&mut stream.ai, outcome, ports);
        let usage = stream.ai.usage();
        let consumer =
            stream.auth.authorized.as_ref().and_then(|a| a.consumer.as_ref()).map(|c| c.name.clone());
        let cost = |model: &str, usage: &Usage| {
            self.ratelimit.as_ref().and_then(|limits| limits.cost_micros(consumer.as_deref(), model, usage))
        };
        let Some(state) = stream.prompt.as_mut() else { return BodyVerdict::pass() };
        match prompt_step::answer(prompt, state, answer, usage, &cost, ports) {
            PromptAnswer::Retry(call) => {
                ai.retry_call(&mut stream.ai);
                self.note(stream, |_| "prompt:retry output_schema_mismatch".to_string());
                BodyVerdict::Call(Callout::Http(call))
            }
            PromptAnswer::Reply(reply) => {
                let used = state.used();
                if let Some(limits) = &self.ratelimit {
                    limits::settle(limits, &mut stream.limits, used.as_ref(), ports);
                }
                BodyVerdict::Respond(self.answered(stream, "prompt", reply, ports))
            }
        }
    }
}

use tollgate_core::{
    BodyVerdict, CallOutcome, Callout, HeaderEdits, LocalReply, Metric, Ports, RequestHead, ResponseHead,
    Verdict,
};
use tollgate_ratelimit::RateLimits;

use tollgate_ai::chat::ChatRequest;
use tollgate_ai::messages::{self, to_anthropic_reply};
use tollgate_ai::{Ai, AiBody, AiHead, AiRequest, AiResponseHead, AiStream, Usage};
use tollgate_auth::{Auth, RouteId};
use tollgate_prompt::PromptConfig;

use crate::ai_step;
use crate::authentication::{self, AuthState, AuthStep};
use crate::head_limits::HeadLimits;
use crate::header_rules::HeaderRules;
use crate::limits::{self, LimitState, LimitStep};
use crate::local_replies::LocalReplies;
use crate::prompt_step::PromptState;
use crate::trace::{Trace, TraceConfig, TRACE_HEADER};

mod background;
mod prompt;
pub use background::{BackgroundCall, USAGE_REPORTS, USAGE_REPORT_ERRORS, USAGE_REPORT_PURPOSE};

/// Counter of requests the pipeline has seen.
pub const REQUESTS_TOTAL: &str = "tollgate_requests_total";
/// Counter of requests the pipeline answered itself.
pub const LOCAL_REPLIES_TOTAL: &str = "tollgate_local_replies_total";
static REQUESTS: Metric = Metric::new(REQUESTS_TOTAL);
static LOCAL_REPLIES: Metric = Metric::new(LOCAL_REPLIES_TOTAL);
/// Counter of refusals per reason code, auth route and consumer:
/// `tollgate_denied.reason.<code>.route.<path_prefix>.consumer.<name>`. The route is the `path_prefix` of the
/// auth route the request met, with `/` written as `_` (`/v1/chat` → `_v1_chat`; `all` without auth).
pub fn denial_metric(code: &str, route: Option<&str>, consumer: Option<&str>) -> String {
    let segment = |name: &str| -> String {
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect()
    };
    format!(
        "tollgate_denied.reason.{}.route.{}.consumer.{}",
        segment(code),
        segment(route.unwrap_or("all")),
        segment(consumer.unwrap_or("anonymous"))
    )
}

/// The compiled configuration: built once per configuration, shared by every stream of a worker.
#[derive(Debug, Default)]
pub struct Pipeline {
    pub(crate) head_limits: HeadLimits,
    pub(crate) upstream_headers: HeaderRules,
    pub(crate) response_headers: HeaderRules,
    pub(crate) local_replies: LocalReplies,
    pub(crate) auth: Option<Auth>,
    pub(crate) ratelimit: Option<RateLimits>,
    pub(crate) ai: Option<Ai>,
    pub(crate) prompt: Option<PromptConfig>,
    pub(crate) trace: TraceConfig,
}

/// How a request head goes on once the limits admit it.
#[derive(Debug)]
enum AfterLimits {
    Continue(HeaderEdits),
    Reply(LocalReply),
    AwaitBody(HeaderEdits),
}

/// What the pipeline remembers about one request between its phases.
#[derive(Debug, Default)]
pub struct Stream {
    replied_locally: bool,
    auth: AuthState,
    limits: LimitState,
    /// Head edits held back while the body is read (`Verdict::AwaitBody`), applied when it is let through.
    held_edits: Option<HeaderEdits>,
    ai: AiStream,
    /// Response head edits held back while the AI gateway reads a response whole.
    held_response: Option<HeaderEdits>,
    /// How the request head goes on once the rate limit service has admitted it.
    after_limits: Option<AfterLimits>,
    /// The head edits and whole body of a request held while the rate limit service is asked.
    held_body: Option<(HeaderEdits, Vec<u8>)>,
    /// What each step decided, when tracing is on.
    trace: Trace,
    /// The auth route the request met, for per-route denial metrics.
    route: Option<RouteId>,
    /// A request to a prompt endpoint, which the filter sends to the provider itself.
    prompt: Option<PromptState>,
    /// The path of a chat request that prompt decorators apply to.
    decorate: Option<String>,
    /// The request is for one of Anthropic's endpoints: refusals take Anthropic's error shape.
    anthropic_client: bool,
}

impl Pipeline {
    /// Starts the per-request state for a new stream.
    pub fn stream(&self) -> Stream {
        Stream::default()
    }

    /// The request head arrived. Local replies are decided here, before any body is read.
    pub fn on_request_headers(&self, stream: &mut Stream, head: &RequestHead, ports: Ports<'_>) -> Verdict {
        ports.metrics.count(&REQUESTS, 1);
        stream.anthropic_client = messages::is_anthropic_path(head.path_only());
        if let Some(reply) = self.head_limits.check(head) {
            return self.reply(stream, "limits", reply, ports);
        }
        if let Some(reply) = self.local_replies.find(head) {
            ports.metrics.count(&LOCAL_REPLIES, 1);
            stream.replied_locally = true;
            self.note(stream, |_| format!("local_reply:{}", reply.status));
            return Verdict::Respond(reply.clone());
        }
        self.decide_head(stream, head, ports)
    }

    /// Auth, then the request's way upstream. Runs again when a call the head waited for has answered.
    fn decide_head(&self, stream: &mut Stream, head: &RequestHead, ports: Ports<'_>) -> Verdict {
        let mut edits = self.upstream_headers.to_edits();
        if let Some(auth) = &self.auth {
            stream.route = Some(auth.route_of(head));
            match authentication::authenticate(auth, &mut stream.auth, head, ports) {
                // Auth's edits come last: operator config cannot undo credential stripping or re-add a
                // client's consumer header.
                AuthStep::Allow(auth_edits) => {
                    edits.extend(auth_edits);
                    self.note(stream, |s| {
                        let consumer = s.auth.authorized.as_ref().and_then(|a| a.consumer.as_ref());
                        format!("auth:allow consumer={}", consumer.map_or("anonymous", |c| c.name.as_str()))
                    });
                }
                AuthStep::Reply(reply) => return self.reply(stream, "auth", reply, ports),
                AuthStep::Call(call) => {
                    self.note(stream, |_| "auth:fetch_jwks".to_string());
                    return Verdict::Call(Callout::Http(call));
                }
            }
        }
        let (after, defer) = match self.prompt_head(stream, head, edits) {
            Ok(decided) => decided,
            Err(edits) => self.ai_head(stream, head, edits),
        };
        // Limits come before the gateway's answer, but an AI request is only decided once its body is in.
        if let Some(limits) = &self.ratelimit {
            let authorized = stream.auth.authorized.as_ref();
            match limits::at_head(limits, &mut stream.limits, head, authorized, defer, ports) {
                LimitStep::Admit if defer => {}
                LimitStep::Admit => self.note(stream, |_| "ratelimit:allow".to_string()),
                LimitStep::Refuse(reply) => return self.reply(stream, "ratelimit", reply, ports),
                LimitStep::Ask(call) => {
                    stream.after_limits = Some(after);
                    return Verdict::Call(Callout::Grpc(call));
                }
            }
        }
        self.go_on(stream, after, ports)
    }

    /// The AI gateway's view of a request head: how it goes on, and whether limits wait for the body.
    fn ai_head(
        &self,
        stream: &mut Stream,
        head: &RequestHead,
        mut edits: HeaderEdits,
    ) -> (AfterLimits, bool) {
        let authorized = stream.auth.authorized.as_ref();
        let ai_head = self.ai.as_ref().map(|ai| ai_step::head(ai, &mut stream.ai, head, authorized));
        let defer = matches!(ai_head, Some(AiHead::NeedBody));
        let after = match ai_head {
            None => self.after_auth(stream, edits),
            Some(AiHead::Pass(ai_edits)) => {
                edits.extend(ai_edits);
                self.after_auth(stream, edits)
            }
            Some(AiHead::Reply(reply)) => AfterLimits::Reply(reply),
            Some(AiHead::NeedBody) => {
                let path = head.path_only();
                if self.prompt.as_ref().is_some_and(|p| p.decorators.covering(path).next().is_some()) {
                    stream.decorate = Some(path.to_string());
                }
                AfterLimits::AwaitBody(edits)
            }
        };
        (after, defer)
    }

    /// A key limited to some models can only be judged once the body names the model.
    fn after_auth(&self, stream: &Stream, edits: HeaderEdits) -> AfterLimits {
        if stream.auth.authorized.as_ref().is_some_and(|a| a.has_model_scope()) {
            AfterLimits::AwaitBody(edits)
        } else {
            AfterLimits::Continue(edits)
        }
    }

    fn go_on(&self, stream: &mut Stream, after: AfterLimits, ports: Ports<'_>) -> Verdict {
        match after {
            AfterLimits::Continue(edits) => Verdict::Continue(edits),
            AfterLimits::Reply(reply) => self.reply(stream, "ai", reply, ports),
            AfterLimits::AwaitBody(edits) => {
                stream.held_edits = Some(edits);
                Verdict::AwaitBody
            }
        }
    }

    fn reply(&self, stream: &mut Stream, step: &str, reply: LocalReply, ports: Ports<'_>) -> Verdict {
        Verdict::Respond(self.answered(stream, step, reply, ports))
    }

    /// Marks the stream as answered by the filter at `step`, counts a refusal under its reason and consumer,
    /// and traces it (the trace header goes to trusted callers only).
    fn answered(
        &self,
        stream: &mut Stream,
        step: &str,
        mut reply: LocalReply,
        ports: Ports<'_>,
    ) -> LocalReply {
        stream.replied_locally = true;
        let consumer = self.consumer(stream).map(|c| c.name.as_str());
        if let Some(code) = reply.reason() {
            let route = self.auth.as_ref().zip(stream.route).map(|(auth, id)| auth.route_prefix(id));
            ports.metrics.increment(&denial_metric(code, route, consumer), 1);
        }
        // A reply without a reason is an answer, not a refusal (the gateway's model list, a configured reply).
        let outcome = match reply.reason() {
            Some(code) => format!("deny {code}"),
            None => format!("reply {}", reply.status),
        };
        self.note(stream, |_| format!("{step}:{outcome}"));
        if self.trace.enabled && self.trace.trusts(self.consumer(stream)) {
            reply.headers.push((TRACE_HEADER.to_string(), stream.trace.render()));
        }
        if stream.anthropic_client {
            reply = to_anthropic_reply(reply);
        }
        reply
    }

    /// Adds a step to the stream's trace, when tracing is on (the text is only built then).
    fn note(&self, stream: &mut Stream, step: impl FnOnce(&Stream) -> String) {
        if self.trace.enabled {
            let text = step(stream);
            stream.trace.step(text);
        }
    }

    /// The request's decision trace if it changed since the last call (tracing on only): the filter publishes
    /// it as filter state for the access log.
    pub fn take_trace_update(&self, stream: &mut Stream) -> Option<String> {
        stream.trace.take_update()
    }

    /// Who the request is from, once auth has let it through (`None` without auth or on open routes).
    pub fn consumer<'s>(&self, stream: &'s Stream) -> Option<&'s tollgate_auth::Consumer> {
        stream.auth.authorized.as_ref()?.consumer.as_ref()
    }

    /// The call a `Verdict::Call` asked for has answered (or failed); decide the request head again.
    pub fn on_call_response(&self, stream: &mut Stream, outcome: &CallOutcome, ports: Ports<'_>) -> Verdict {
        if let Some(limits) = self.ratelimit.as_ref().filter(|_| stream.limits.is_asking()) {
            return match self.global_answer(limits, stream, outcome, ports) {
                Some(LimitStep::Ask(call)) => Verdict::Call(Callout::Grpc(call)),
                Some(LimitStep::Refuse(reply)) => self.reply(stream, "ratelimit", reply, ports),
                Some(LimitStep::Admit) | None => {
                    let after =
                        stream.after_limits.take().unwrap_or(AfterLimits::Continue(Default::default()));
                    self.go_on(stream, after, ports)
                }
            };
        }
        let auth = self.auth.as_ref();
        match auth.and_then(|auth| authentication::keys_arrived(auth, &mut stream.auth, outcome, ports)) {
            Some(head) => self.decide_head(stream, &head, ports),
            None => Verdict::Continue(Default::default()),
        }
    }

    /// The rate limit service's answer for the global rule the stream asked about, traced.
    fn global_answer(
        &self,
        limits: &RateLimits,
        stream: &mut Stream,
        outcome: &CallOutcome,
        ports: Ports<'_>,
    ) -> Option<LimitStep> {
        let rule = stream.limits.asking_rule().unwrap_or_default().to_string();
        let step = limits::answer(limits, &mut stream.limits, outcome, ports);
        if !matches!(step, Some(LimitStep::Refuse(_))) {
            self.note(stream, |_| format!("ratelimit.{rule}:allow"));
        }
        if matches!(step, Some(LimitStep::Admit)) {
            self.note(stream, |_| "ratelimit:allow".to_string());
        }
        step
    }

    /// Whether this stream's request body phase needs the bytes. When it does not, the filter lets the body
    /// pass without copying it out of the proxy (and `on_request_body` would only say `pass`).
    pub fn reads_request_body(&self, stream: &Stream) -> bool {
        stream.held_edits.is_some()
    }

    /// As `reads_request_body`, for the response: only responses the AI gateway translates are read.
    /// A reply of the filter's own (a prompt endpoint's answer, after its provider call) is never read.
    pub fn reads_response_body(&self, stream: &Stream) -> bool {
        self.ai.is_some() && !stream.replied_locally && stream.ai.reads_response_body()
    }

    /// The tokens a request used, as its provider reported them (complete once the response is; `None` for
    /// requests that were not AI requests or whose provider answered with an error).
    pub fn usage(&self, stream: &Stream) -> Option<Usage> {
        stream.ai.usage()
    }

    /// Request body arrived. `buffered` is all of it the proxy holds: every chunk since the pipeline last
    /// let the body through (so after `BodyVerdict::Buffer`, earlier chunks are seen again, with the new one).
    pub fn on_request_body(
        &self,
        stream: &mut Stream,
        buffered: &[u8],
        end_of_stream: bool,
        ports: Ports<'_>,
    ) -> BodyVerdict {
        let Some(held) = stream.held_edits.take() else { return BodyVerdict::pass() };
        let ai = self.ai.as_ref().filter(|_| stream.ai.reads_request_body());
        if !end_of_stream {
            // Refuse an oversized AI body as soon as it is, rather than buffering the rest of it.
            if let Some(Err(error)) = ai.map(|ai| ai.check_request_size(buffered.len())) {
                return BodyVerdict::Respond(self.answered(stream, "ai", error.to_reply(), ports));
            }
            stream.held_edits = Some(held);
            return BodyVerdict::Buffer;
        }
        // A prompt endpoint's variables become the chat request that scopes and limits judge.
        let rendered = match self.prompt_body(stream, buffered, ports) {
            Ok(rendered) => rendered,
            Err(reply) => return BodyVerdict::Respond(reply),
        };
        let buffered = rendered.as_deref().unwrap_or(buffered);
        let denied = self
            .auth
            .as_ref()
            .and_then(|auth| authentication::check_model(auth, &stream.auth, buffered, ports));
        if let Some(reply) = denied {
            return BodyVerdict::Respond(self.answered(stream, "auth.model", reply, ports));
        }
        if let Some(limits) = &self.ratelimit {
            let authorized = stream.auth.authorized.as_ref();
            match limits::at_body(limits, &mut stream.limits, authorized, buffered, ports) {
                LimitStep::Admit => self.note(stream, |_| "ratelimit:allow".to_string()),
                LimitStep::Refuse(reply) => {
                    return BodyVerdict::Respond(self.answered(stream, "ratelimit", reply, ports));
                }
                LimitStep::Ask(call) => {
                    stream.held_body = Some((held, buffered.to_vec()));
                    return BodyVerdict::Call(Callout::Grpc(call));
                }
            }
        }
        self.forward_body(stream, held, buffered, ports)
    }

    /// The call a `BodyVerdict::Call` asked for has answered (or failed); decide the request body again.
    pub fn on_body_call_response(
        &self,
        stream: &mut Stream,
        outcome: &CallOutcome,
        ports: Ports<'_>,
    ) -> BodyVerdict {
        if stream.prompt.as_ref().is_some_and(PromptState::awaiting_provider) {
            return self.prompt_answer(stream, outcome, ports);
        }
        let Some(limits) = &self.ratelimit else { return BodyVerdict::pass() };
        match self.global_answer(limits, stream, outcome, ports) {
            Some(LimitStep::Ask(call)) => BodyVerdict::Call(Callout::Grpc(call)),
            Some(LimitStep::Refuse(reply)) => {
                stream.held_body = None;
                BodyVerdict::Respond(self.answered(stream, "ratelimit", reply, ports))
            }
            Some(LimitStep::Admit) | None => match stream.held_body.take() {
                Some((held, body)) => self.forward_body(stream, held, &body, ports),
                None => BodyVerdict::pass(),
            },
        }
    }

    /// The request passed every check: the AI gateway translates it, or it goes as it is.
    fn forward_body(
        &self,
        stream: &mut Stream,
        held: HeaderEdits,
        body: &[u8],
        ports: Ports<'_>,
    ) -> BodyVerdict {
        if stream.prompt.is_some() {
            return self.prompt_call(stream, body, ports);
        }
        let ai = self.ai.as_ref().filter(|_| stream.ai.reads_request_body());
        let Some(ai) = ai else { return BodyVerdict::Continue { head: held, body: None } };
        let decorators = self.prompt.as_ref().map(|p| &p.decorators);
        let translated = match (decorators, stream.decorate.as_deref()) {
            (Some(decorators), Some(path)) => {
                let decorate = |request: &mut ChatRequest| {
                    decorators.apply(path, request);
                };
                ai.on_request_body_decorated(&mut stream.ai, body, ports, &decorate)
            }
            _ => ai.on_request_body(&mut stream.ai, body, ports),
        };
        let reply = match translated {
            Ok(AiRequest::Upstream { head: ai_edits, body }) => {
                self.note(stream, |_| "ai:forward".to_string());
                let mut head = held;
                head.extend(ai_edits);
                return BodyVerdict::Continue { head, body: Some(body) };
            }
            Ok(AiRequest::Answer(reply)) => reply,
            Err(error) => error.to_reply(),
        };
        // Refused, or answered, before going upstream: nothing was used.
        // Without usage there is nothing to report to the rate limit service either.
        if let Some(limits) = &self.ratelimit {
            limits::release(limits, &mut stream.limits, None, ports);
        }
        BodyVerdict::Respond(self.answered(stream, "ai", reply, ports))
    }

    /// Whether `on_response_headers` reads the head's status and fields: only for a response the AI gateway
    /// translates. Otherwise the filter need not copy the head out of the proxy (an empty head will do).
    pub fn reads_response_head(&self, stream: &Stream) -> bool {
        self.reads_response_body(stream)
    }

    /// The upstream's response head arrived.
    pub fn on_response_headers(&self, stream: &mut Stream, head: &ResponseHead, ports: Ports<'_>) -> Verdict {
        if stream.replied_locally {
            return Verdict::Continue(Default::default());
        }
        let mut edits = self.response_headers.to_edits();
        edits.extend(std::mem::take(&mut stream.limits.response_headers));
        if self.trace.enabled && self.trace.trusts(self.consumer(stream)) {
            edits = edits.set(TRACE_HEADER, stream.trace.render());
        }
        if let Some(ai) = &self.ai {
            match ai.on_response_head(&mut stream.ai, head, ports) {
                AiResponseHead::Pass => {}
                AiResponseHead::Stream(ai_edits) => edits.extend(ai_edits),
                AiResponseHead::AwaitBody => {
                    stream.held_response = Some(edits);
                    return Verdict::AwaitBody;
                }
            }
        }
        Verdict::Continue(edits)
    }

    /// Response body arrived; `buffered` as for `on_request_body`.
    /// While a response streams, `buffered` is just the new chunk and a replacement body replaces just it.
    pub fn on_response_body(
        &self,
        stream: &mut Stream,
        buffered: &[u8],
        end_of_stream: bool,
        ports: Ports<'_>,
    ) -> BodyVerdict {
        let Some(ai) = self.ai.as_ref().filter(|_| self.reads_response_body(stream)) else {
            return BodyVerdict::pass();
        };
        match ai.on_response_body(&mut stream.ai, buffered, end_of_stream, ports) {
            AiBody::Buffer => BodyVerdict::Buffer,
            AiBody::Continue { head: ai_edits, body } => {
                let mut cost = None;
                if let (true, Some(limits)) = (end_of_stream, &self.ratelimit) {
                    let usage = stream.ai.usage();
                    let micros = limits::settle(limits, &mut stream.limits, usage.as_ref(), ports);
                    cost = limits.cost_header(micros);
                }
                // The cost is known before the head goes out only for an answer read whole (a held head).
                let held = stream.held_response.take();
                let cost = cost.filter(|_| held.is_some());
                let mut head = held.unwrap_or_default();
                head.extend(ai_edits);
                if let Some((name, value)) = cost {
                    head = head.set(name, value);
                }
                BodyVerdict::Continue { head, body }
            }
        }
    }
}

#[cfg(test)]
mod ai_tests;
#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod global_tests;
#[cfg(test)]
mod prompt_tests;
#[cfg(test)]
mod ratelimit_tests;
#[cfg(test)]
mod trace_tests;

#[cfg(test)]
mod basic_tests;

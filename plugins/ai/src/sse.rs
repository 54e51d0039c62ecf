//! Server-sent events: an incremental parser that reassembles events split anywhere across body chunks,
//! with a bound on how much it holds, and the writer for the events clients receive.

/// One complete event as the upstream sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when present (Anthropic names every event; OpenAI and Gemini send none).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

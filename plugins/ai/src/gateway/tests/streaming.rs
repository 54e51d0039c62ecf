use serde_json::{json, Value};
use tollgate_core::testing::MemoryHost;
use tollgate_core::{HeaderEdits, ResponseHead};

use super::{ai, chat, send};
use crate::gateway::{AiBody, AiResponseHead, AiStream, PROVIDER_HEADER};
use crate::Ai;

const UPSTREAM: &str =
    "data: {\"text\":\"Hel\"}\r\n\r\n: ping\n\ndata: {\"text\":\"lo 😀\"}\n\ndata: {\"in\":3,\"out\":2}\n\n";

fn start(ai: &Ai, host: &MemoryHost, include_usage: bool) -> AiStream {
    let mut stream = AiStream::default();
    let mut request = chat("fast");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": include_usage});
    send(ai, &mut stream, request, host).unwrap();
    let head =
        ResponseHead::from_pairs([(":status", "200"), ("content-type", "text/event-stream; charset=utf-8")]);
    let AiResponseHead::Stream(edits) = ai.on_response_head(&mut stream, &head, host.ports()) else {
        panic!("expected a stream")
    };
    assert_eq!(edits.remove, ["content-length"]);
    assert!(edits.set.contains(&(PROVIDER_HEADER.to_string(), "stub".to_string())));
    assert!(edits.set.contains(&("content-type".to_string(), "text/event-stream".to_string())));
    stream
}

/// Feeds the pieces as body callbacks; returns the data of every client event.
fn run(ai: &Ai, host: &MemoryHost, stream: &mut AiStream, pieces: &[&[u8]]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let end = i + 1 == pieces.len();
        let AiBody::Continue { head, body: Some(bytes) } =
            ai.on_response_body(stream, piece, end, host.ports())
        else {
            panic!("streams are never buffered")
        };
        assert_eq!(head, HeaderEdits::default());
        out.extend(bytes);
    }
    let text = String::from_utf8(out).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {e:?}")).to_string())
        .collect()
}

fn contents(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .map(|e| if e == "[DONE]" { json!("[DONE]") } else { serde_json::from_str(e).unwrap() })
        .collect()
}

#[test]
fn every_split_of_the_stream_gives_the_same_chunks() {
    let (ai, host) = (ai(), MemoryHost::default());
    let whole = run(&ai, &host, &mut start(&ai, &host, true), &[UPSTREAM.as_bytes()]);
    let events = contents(&whole);
    assert_eq!(events.len(), 5, "{whole:?}");
    assert_eq!(events[0]["choices"][0]["delta"]["content"], "Hel");
    assert_eq!(events[1]["choices"][0]["delta"]["content"], "lo 😀");
    assert_eq!(events[1]["id"], "chatcmpl-req-1");
    assert_eq!(events[1]["model"], "stub-fast-v2");
    assert_eq!(events[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[3]["choices"], json!([]));
    assert_eq!(events[3]["usage"]["total_tokens"], 5);
    assert_eq!(events[4], "[DONE]");

    let bytes = UPSTREAM.as_bytes();
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(run(&ai, &host, &mut start(&ai, &host, true), &[a, b]), whole, "split at {i}");
    }
    let ones: Vec<&[u8]> = bytes.chunks(1).collect();
    let mut stream = start(&ai, &host, true);
    assert_eq!(run(&ai, &host, &mut stream, &ones), whole);
    assert_eq!(stream.usage().map(|u| u.total()), Some(5));
}

#[test]
fn without_include_usage_there_is_no_usage_chunk_but_usage_is_still_known() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = start(&ai, &host, false);
    host.advance(std::time::Duration::from_millis(40));
    let events = run(&ai, &host, &mut stream, &[UPSTREAM.as_bytes()]);
    assert_eq!(events.len(), 4);
    assert_eq!(stream.usage().map(|u| u.input_tokens), Some(3));
    let labels = ".provider.stub.model.fast.consumer.alice";
    assert_eq!(host.metric(&format!("tollgate_ai_time_to_first_token_ms{labels}")), 40);
    assert_eq!(host.metric(&format!("tollgate_ai_output_tokens{labels}")), 2);
}

#[test]
fn a_failure_mid_stream_keeps_what_was_sent_then_ends_with_an_error() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = start(&ai, &host, true);
    let first: &[u8] = b"data: {\"text\":\"Hel\"}\n\ndata: boom\n\ndata: {\"text\":\"never\"}\n\n";
    let events = run(&ai, &host, &mut stream, &[first, b"data: {\"in\":1}\n\n"]);
    let events = contents(&events);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["choices"][0]["delta"]["content"], "Hel");
    assert_eq!(events[1]["error"]["code"], "bad_upstream_response");
    assert_eq!(events[2], "[DONE]");
    assert_eq!(host.metric("tollgate_ai_errors.provider.stub.model.fast.consumer.alice"), 1);
}

#[test]
fn a_truncated_stream_or_an_oversized_event_ends_with_an_error() {
    let (ai, host) = (ai(), MemoryHost::default());
    let events = contents(&run(&ai, &host, &mut start(&ai, &host, true), &[b"data: {\"text\":\"a\"}\n\n"]));
    assert_eq!(events[1]["error"]["code"], "upstream_stream_truncated");
    assert_eq!(events[2], "[DONE]");

    let small = super::ai_with(json!({"limits": {"max_event_bytes": 64}}));
    let big = format!("data: {{\"text\":\"{}\"}}\n\n", "x".repeat(100));
    let events = contents(&run(&small, &host, &mut start(&small, &host, true), &[big.as_bytes()]));
    assert_eq!(events[0]["error"]["code"], "body_too_large");
    assert_eq!(events[1], "[DONE]");
}

/// The provider's final event ends the client's stream at once: an upstream end that comes later with
/// trailers, and no body to write into, loses nothing; bytes after it are dropped.
#[test]
fn the_final_event_ends_the_stream_before_the_upstream_does() {
    let (ai, host) = (ai(), MemoryHost::default());
    let mut stream = start(&ai, &host, true);
    let AiBody::Continue { body: Some(bytes), .. } =
        ai.on_response_body(&mut stream, UPSTREAM.as_bytes(), false, host.ports())
    else {
        panic!("streams are never buffered")
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(stream.usage().map(|u| u.total()), Some(5));
    let later = ai.on_response_body(&mut stream, b"data: {\"text\":\"late\"}\n\n", true, host.ports());
    assert!(matches!(&later, AiBody::Continue { body: Some(b), .. } if b.is_empty()), "{later:?}");
}

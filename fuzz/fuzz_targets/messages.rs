//! Anthropic's Messages API as an ingress (`tollgate_ai::messages`), on hostile input:
//! - byte 0 even: the rest is a client's Messages request; reading it and turning it into a chat request
//!   (and the token estimate) must not panic, and a request that reads must serialise;
//! - byte 0 odd: the rest is an adapter's OpenAI stream output, cut into input-chosen pieces of whole lines
//!   (as the gateway hands the encoder whole events); the Anthropic events written must each be named as their
//!   data's `type`, start with `message_start` (or be a lone error), and end with `message_stop` or `error`.
//!   The same bytes are also read as a translated completion, which must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_ai::messages::{estimate_input_tokens, message_from_completion, to_chat_request, MessagesEncoder, MessagesRequest};
use tollgate_ai::Usage;

fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).expect("the encoder writes UTF-8");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').expect("an event has a name line and a data line");
            let name = name.strip_prefix("event: ").expect("named event");
            let data = data.strip_prefix("data: ").expect("one data line");
            assert!(!data.contains('\n'), "one data line: {event:?}");
            let data: Value = serde_json::from_str(data).expect("data is JSON");
            assert_eq!(data["type"], name, "event name and type");
            (name.to_string(), data)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    if mode % 2 == 0 {
        if let Ok(request) = serde_json::from_slice::<MessagesRequest>(rest) {
            let (chat, _dropped) = to_chat_request(&request);
            serde_json::to_vec(&chat).expect("a chat request serialises");
            let _ = estimate_input_tokens(&request);
        }
        return;
    }
    let _ = message_from_completion(rest, &Usage::default());
    let mut encoder = MessagesEncoder::new("chatcmpl-fuzz", "model");
    let mut out = Vec::new();
    // Pieces end after a line end chosen by the input's own bytes.
    for piece in rest.split_inclusive(|b| *b == b'\n').collect::<Vec<_>>().chunks(usize::from(*mode / 2 % 7) + 1) {
        encoder.encode(&piece.concat());
        out.extend(encoder.take());
    }
    encoder.finish(&Usage { input_tokens: 3, output_tokens: 4, ..Usage::default() });
    out.extend(encoder.take());
    let written = events(&out);
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    let last = *names.last().expect("something is written");
    assert!(last == "message_stop" || last == "error", "{names:?}");
    assert!(names[0] == "message_start" || names == ["error"], "{names:?}");
    assert!(names.iter().filter(|n| **n == "message_stop" || **n == "error").count() == 1, "{names:?}");
});

use super::event_stream::encode::{event, exception, frame};
use super::EventStreamDecoder;
use crate::sse::{EventDecoder, SseEvent};
use crate::AiError;

/// Everything decoded from these pushes, then the end of the body; the first error stops the decode.
fn decode(max: usize, pushes: &[&[u8]]) -> (Vec<SseEvent>, Option<AiError>) {
    let mut decoder = EventStreamDecoder::new(max);
    let mut events = Vec::new();
    let mut collect = |e: &SseEvent| {
        events.push(e.clone());
        Ok(())
    };
    for bytes in pushes {
        if let Err(error) = decoder.push_events(bytes, &mut collect) {
            return (events, Some(error));
        }
    }
    let end = decoder.finish_events(&mut collect).err();
    (events, end)
}

fn named(kind: &str, data: &str) -> SseEvent {
    SseEvent { event: Some(kind.into()), data: data.into() }
}

/// A frame from the AWS event-stream documentation's layout, written out byte by byte, decodes; so does
/// every header type the format has, which are skipped.
#[test]
fn frames_decode_with_every_header_type() {
    let mut headers = Vec::new();
    let mut header = |name: &str, kind: u8, value: &[u8]| {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(kind);
        headers.extend_from_slice(value);
    };
    header("t", 0, &[]);
    header("f", 1, &[]);
    header("byte", 2, &[7]);
    header("short", 3, &[0, 7]);
    header("int", 4, &[0, 0, 0, 7]);
    header("long", 5, &[0; 8]);
    header("bytes", 6, &[0, 3, 1, 2, 3]);
    header(":event-type", 7, b"\x00\x0bmessageStop");
    header("time", 8, &[0; 8]);
    header("uuid", 9, &[0xab; 16]);
    header(":message-type", 7, b"\x00\x05event");
    let payload = br#"{"stopReason":"end_turn"}"#;
    let total = (12 + headers.len() + payload.len() + 4) as u32;
    let mut bytes = total.to_be_bytes().to_vec();
    bytes.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
    bytes.extend_from_slice(&headers);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
    assert_eq!(
        decode(1 << 20, &[&bytes]),
        (vec![named("messageStop", r#"{"stopReason":"end_turn"}"#)], None)
    );
}

/// Two frames split at every byte boundary, and one byte at a time, give the same two events.
#[test]
fn frames_split_anywhere_reassemble() {
    let mut stream = event("messageStart", r#"{"role":"assistant"}"#);
    stream.extend(event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hé"}}"#));
    let expected = vec![
        named("messageStart", r#"{"role":"assistant"}"#),
        named("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hé"}}"#),
    ];
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(decode(1 << 20, &[a, b]), (expected.clone(), None), "split at {cut}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(1 << 20, &bytes), (expected, None));
}

#[test]
fn a_frame_cut_short_is_a_truncated_stream() {
    let stream = event("messageStart", r#"{"role":"assistant"}"#);
    for cut in 1..stream.len() {
        assert_eq!(
            decode(1 << 20, &[&stream[..cut]]),
            (vec![], Some(AiError::TruncatedStream)),
            "cut at {cut}"
        );
    }
    assert_eq!(decode(1 << 20, &[&[]]), (vec![], None));
}

#[test]
fn damaged_frames_are_errors() {
    let good = event("messageStart", "{}");
    let bad = |bytes: Vec<u8>| match decode(1 << 20, &[&bytes]) {
        (events, Some(AiError::BadUpstreamResponse(message))) if events.is_empty() => message,
        other => panic!("{other:?}"),
    };
    let mut prelude = good.clone();
    prelude[2] ^= 1;
    assert!(bad(prelude).contains("prelude CRC"));
    let mut message = good.clone();
    let at = message.len() - 6;
    message[at] ^= 1;
    assert!(bad(message).contains("message CRC"));
    assert!(bad(frame(&[(":event-type", "x")], b"{}")).contains("without :message-type"));
    assert!(bad(frame(&[(":message-type", "event")], b"{}")).contains("without :event-type"));
    assert!(bad(frame(&[(":message-type", "weird")], b"{}")).contains("unknown :message-type"));
    assert!(bad(frame(&[(":message-type", "event"), (":event-type", "x")], b"\xff")).contains("not UTF-8"));
    // Lengths that do not fit: a total under the minimum, headers longer than the frame.
    for (total, headers) in [(15u32, 0u32), (16, 1), (40, 30)] {
        let mut bytes = total.to_be_bytes().to_vec();
        bytes.extend_from_slice(&headers.to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
        bytes.resize(total as usize, 0);
        assert!(bad(bytes).contains("inconsistent"));
    }
    // A header whose value runs past the headers, and a header type the format does not have.
    let mut header = b"\x01a\x07\x00\x09xx".to_vec();
    let framed = |head: &[u8]| {
        let total = (16 + head.len()) as u32;
        let mut bytes = total.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(head.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
        bytes
    };
    assert!(bad(framed(&header)).contains("runs past"));
    header = b"\x01a\x0a".to_vec();
    assert!(bad(framed(&header)).contains("unknown type 10"));
}

#[test]
fn a_frame_over_the_bound_is_refused_from_its_prelude() {
    let big = event("contentBlockDelta", &format!(r#"{{"delta":{{"text":"{}"}}}}"#, "x".repeat(200)));
    let (events, error) = decode(128, &[&big[..12]]);
    assert!(events.is_empty());
    assert_eq!(error, Some(AiError::TooLarge { what: "an upstream stream event", limit: 128, status: 502 }));
    assert_eq!(decode(big.len(), &[&big]).0.len(), 1);
}

#[test]
fn exception_frames_carry_the_provider_error() {
    let mut stream = event("messageStart", r#"{"role":"assistant"}"#);
    stream.extend(exception("throttlingException", r#"{"message":"Too many requests, please wait."}"#));
    let (events, error) = decode(1 << 20, &[&stream]);
    assert_eq!(events, vec![named("messageStart", r#"{"role":"assistant"}"#)]);
    let error = error.unwrap();
    assert_eq!(error.status(), 429);
    assert_eq!(
        error.to_openai_json(),
        serde_json::json!({"error": {"message": "Too many requests, please wait.", "type": "rate_limit_error",
                                     "param": null, "code": "throttling_exception"}})
    );
    let (_, error) = decode(1 << 20, &[&exception("modelStreamErrorException", "not json")]);
    let error = error.unwrap();
    assert_eq!((error.status(), error.code()), (424, Some("model_stream_error_exception")));
    assert_eq!(error.to_string(), "the Bedrock stream failed with modelStreamErrorException");
    let (_, error) = decode(1 << 20, &[&exception("internalServerException", r#"{"message":"boom"}"#)]);
    assert_eq!(error.unwrap().status(), 502);
    let headers =
        [(":message-type", "error"), (":error-code", "InternalFailure"), (":error-message", "oops")];
    let (_, error) = decode(1 << 20, &[&frame(&headers, b"")]);
    let error = error.unwrap();
    assert_eq!(
        (error.status(), error.code(), error.to_string()),
        (502, Some("internal_failure"), "oops".into())
    );
}

/// `metadata` is ConverseStream's last event: bytes after it in the same chunk are ignored, as they would
/// be had the gateway ended the stream at the chunk boundary before them.
#[test]
fn nothing_after_the_metadata_event_is_decoded() {
    let mut stream = event("metadata", r#"{"usage":{}}"#);
    stream.extend_from_slice(b"\x00\x00\x00\x10garbage, not a frame");
    assert_eq!(decode(1 << 20, &[&stream]), (vec![named("metadata", r#"{"usage":{}}"#)], None));
}

use super::*;

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent { event: event.map(str::to_string), data: data.to_string() }
}

/// Parses a whole stream fed in the given pieces.
fn parse_pieces(pieces: &[&[u8]], max: usize) -> Result<Vec<SseEvent>, AiError> {
    let mut parser = SseParser::new(max);
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(parser.push(piece)?);
    }
    events.extend(parser.finish());
    Ok(events)
}

fn parse(text: &[u8]) -> Vec<SseEvent> {
    parse_pieces(&[text], 1 << 20).unwrap()
}

const MIXED: &[u8] = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive comment\n\
data:no-space\ndata:  two spaces\n\nid: 7\nretry: 100\nevent:ping\ndata: \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\r\r\
data\n\ndata: last without blank line";

fn mixed_expected() -> Vec<SseEvent> {
    vec![
        ev(Some("message_start"), "{\"a\":1}"),
        ev(None, "no-space\n two spaces"),
        ev(Some("ping"), "été 😀"),
        ev(None, ""),
        ev(None, "last without blank line"),
    ]
}

#[test]
fn fields_line_endings_and_comments() {
    assert_eq!(parse(MIXED), mixed_expected());
}

#[test]
fn events_without_data_are_not_dispatched_and_the_event_name_resets() {
    assert_eq!(parse(b"event: ping\n\ndata: x\n\n"), [ev(None, "x")]);
    assert_eq!(parse(b": only a comment\n\n"), []);
    assert_eq!(parse(b""), []);
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    assert_eq!(parse(b"\xef\xbb\xbfdata: x\n\n"), [ev(None, "x")]);
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    assert_eq!(parse(b"data: a\xffb\n\n"), [ev(None, "a\u{fffd}b")]);
}

#[test]
fn split_at_every_byte_boundary() {
    for i in 0..=MIXED.len() {
        let (a, b) = MIXED.split_at(i);
        assert_eq!(parse_pieces(&[a, b], 1 << 20).unwrap(), mixed_expected(), "split at {i}");
    }
    let bytes: Vec<&[u8]> = MIXED.chunks(1).collect();
    assert_eq!(parse_pieces(&bytes, 1 << 20).unwrap(), mixed_expected());
}

#[test]
fn cr_then_lf_in_the_next_chunk_is_one_line_end() {
    let events = parse_pieces(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], 100).unwrap();
    assert_eq!(events, [ev(None, "a\nb")]);
}

#[test]
fn an_event_over_the_bound_is_an_error_and_memory_stays_bounded() {
    let mut parser = SseParser::new(16);
    assert_eq!(parser.push(b"data: 0123456789\n\n").unwrap(), [ev(None, "0123456789")]);
    let err = parser.push(&[b'x'; 4096]).unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(matches!(err, AiError::TooLarge { limit: 16, .. }));
    assert!(parser.line.capacity() <= 16, "the oversized bytes were never copied");

    // Many small lines of one event add up too.
    let mut parser = SseParser::new(16);
    let err = parser.push(b"data: 12345\ndata: 12345\ndata: 12345\n").unwrap_err();
    assert!(matches!(err, AiError::TooLarge { .. }));
}

/// A small deterministic generator, so failures reproduce without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn random_stream(rng: &mut Lcg) -> (Vec<u8>, Vec<SseEvent>) {
    let endings: [&[u8]; 3] = [b"\n", b"\r\n", b"\r"];
    let words = ["{\"x\":1}", "héllo", "😀😀", "", "a:b", " lead"];
    let mut text = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..rng.below(6) {
        let nl = endings[rng.below(3)];
        if rng.below(3) == 0 {
            text.extend_from_slice(b": comment");
            text.extend_from_slice(nl);
        }
        let name = (rng.below(2) == 0).then(|| words[rng.below(3)].to_string());
        if let Some(name) = &name {
            text.extend_from_slice(format!("event: {name}").as_bytes());
            text.extend_from_slice(nl);
        }
        let lines: Vec<&str> = (0..=rng.below(3)).map(|_| words[rng.below(words.len())]).collect();
        for line in &lines {
            text.extend_from_slice(format!("data: {line}").as_bytes());
            text.extend_from_slice(nl);
        }
        text.extend_from_slice(nl);
        expected.push(SseEvent { event: name, data: lines.join("\n") });
    }
    (text, expected)
}

#[test]
fn random_streams_split_randomly_parse_like_whole_ones() {
    let mut rng = Lcg(0x5eed);
    for round in 0..2000 {
        let (text, expected) = random_stream(&mut rng);
        assert_eq!(parse(&text), expected, "round {round} whole");
        let mut pieces = Vec::new();
        let mut rest = text.as_slice();
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(1 + rng.below(rest.len().min(9)));
            pieces.push(piece);
            rest = tail;
        }
        assert_eq!(parse_pieces(&pieces, 1 << 16).unwrap(), expected, "round {round}: {pieces:?}");
    }
}

/// `push_each` hands out the same events as `push`, one buffer reused for all, and stops at the first error
/// its callback returns.
#[test]
fn events_are_handed_out_in_place_and_a_callback_error_stops_the_parse() {
    let mut parser = SseParser::new(1 << 20);
    let mut seen = Vec::new();
    let mut keep = |event: &SseEvent| {
        seen.push(event.clone());
        Ok(())
    };
    parser.push_each(MIXED, &mut keep).unwrap();
    parser.finish_each(&mut keep).unwrap();
    assert_eq!(seen, mixed_expected());

    let mut parser = SseParser::new(1 << 20);
    let mut calls = 0;
    let stopped = parser.push_each(b"data: a\n\ndata: b\n\ndata: c\n\n", |_| {
        calls += 1;
        Err(AiError::TruncatedStream)
    });
    assert!(matches!(stopped, Err(AiError::TruncatedStream)));
    assert_eq!(calls, 1);
}

//! The SSE framer fed the same stream whole and in input-chosen pieces: both must frame the same events
//! and fail (an event over the size bound) at the same point.
//!
//! Input: one byte `b` for the bound (0: the gateway's default of 1 MiB, else `8 * b` bytes, so the
//! `TooLarge` path is reached), one byte `n`, `n % 16` bytes each giving a piece length, then the stream.
//! The stream is cut into pieces of those lengths in turn (a length of 0 is an empty push, then one byte).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_ai::{SseEvent, SseParser};
use tollgate_fuzz::pieces_of;

/// Everything the parser hands out for these pushes, and whether it stopped with an error. After an error
/// the gateway ends the stream, so nothing more is fed.
fn frame<'a>(max: usize, pushes: impl IntoIterator<Item = &'a [u8]>) -> (Vec<SseEvent>, bool) {
    let mut parser = SseParser::new(max);
    let mut events = Vec::new();
    for bytes in pushes {
        let pushed = parser.push_each(bytes, |event| {
            events.push(event.clone());
            Ok(())
        });
        if pushed.is_err() {
            return (events, true);
        }
    }
    events.extend(parser.finish());
    (events, false)
}

fuzz_target!(|data: &[u8]| {
    let [bound, count, rest @ ..] = data else { return };
    let count = usize::from(count % 16).min(rest.len());
    let (lengths, stream) = rest.split_at(count);
    let max = match bound {
        0 => 1 << 20,
        b => 8 * usize::from(*b),
    };

    let pieces = pieces_of(lengths, stream);

    let whole = frame(max, [stream]);
    let split = frame(max, pieces);
    assert_eq!(whole, split, "framing depends on where the stream was split");
});

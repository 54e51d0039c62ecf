//! Bedrock's binary event stream through its decoder and the ConverseStream translator, fed the same bytes
//! whole and in input-chosen pieces, driven as the gateway's `LiveStream::feed` drives them: both must give
//! the client the same bytes and fail (a bad CRC, a frame over the bound, an exception frame, a frame cut
//! short, a malformed event) at the same point.
//!
//! Input: one byte `b` for the bound (0: the gateway's default of 1 MiB, else `16 * b` bytes, so the
//! `TooLarge` path is reached), one byte `n`, `n % 16` bytes each giving a piece length, then the stream.
//! The stream is cut into pieces of those lengths in turn (a length of 0 is an empty push, then one byte);
//! without lengths, one byte at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_ai::providers::ProviderKind;
use tollgate_ai::{Adapter, ChunkSink, ProviderSettings, Target};
use tollgate_fuzz::pieces_of;

/// The client's bytes and whether the stream ended in an error, as the gateway writes them.
fn run<'a>(adapter: &dyn Adapter, max: usize, pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, bool) {
    let target = Target { upstream_model: "m", client_model: "m", created: 1_700_000_000, request_id: "fuzz" };
    let mut decoder = adapter.stream_decoder(max);
    let mut translator = adapter.stream_translator(&target);
    let mut sink = ChunkSink::new(&target);
    let mut outcome = Ok(());
    for piece in pieces {
        outcome = decoder.push_events(piece, &mut |event| translator.on_event(event, &mut sink));
        if outcome.is_err() || translator.ended() {
            break;
        }
    }
    if outcome.is_ok() {
        outcome = decoder
            .finish_events(&mut |event| translator.on_event(event, &mut sink))
            .and_then(|()| translator.finish(&mut sink));
    }
    let failed = match outcome {
        Ok(()) => {
            sink.usage_chunk(&translator.usage());
            false
        }
        Err(error) => {
            let _ = (error.status(), error.to_reply());
            sink.write(&error.to_openai_json());
            true
        }
    };
    sink.done();
    (sink.take(), failed)
}

fuzz_target!(|data: &[u8]| {
    let [bound, count, rest @ ..] = data else { return };
    let count = usize::from(count % 16).min(rest.len());
    let (lengths, stream) = rest.split_at(count);
    let max = match bound {
        0 => 1 << 20,
        b => 16 * usize::from(*b),
    };
    let adapter = ProviderKind::Bedrock.adapter(ProviderSettings::default());

    let pieces = pieces_of(lengths, stream);

    let whole = run(adapter.as_ref(), max, [stream]);
    let split = run(adapter.as_ref(), max, pieces);
    assert_eq!(whole, split, "the client's stream depends on where the upstream stream was split");
});

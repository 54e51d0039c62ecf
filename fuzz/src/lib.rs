//! Helpers shared by the fuzz targets: cutting one input into fields and into the pieces a stream arrives in.

/// Splits `data` at its first `n - 1` NUL bytes into at most `n` fields (the last keeps any further NULs).
/// JSON text never holds a raw NUL, so seeds made of JSON documents stay readable.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == 0).collect()
}

/// Cuts `data` into pieces of 1 to 64 bytes whose lengths follow from `seed`, the way a body arrives in
/// chunks of whatever size the network made: the same input always gives the same pieces.
pub fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 64 + 1) as usize;
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

/// A `&str` view of bytes, or `None` when they are not UTF-8 (the host hands plugins only valid text).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Cuts `stream` into pieces of the input's own `lengths`, in turn (a length of 0 is an empty push, then one
/// byte); without lengths, one byte at a time, the hardest split there is.
pub fn pieces_of<'a>(lengths: &[u8], stream: &'a [u8]) -> Vec<&'a [u8]> {
    if lengths.is_empty() {
        return stream.chunks(1).collect();
    }
    let mut pieces = Vec::new();
    let mut tail = stream;
    for length in lengths.iter().cycle() {
        if tail.is_empty() {
            break;
        }
        if *length == 0 {
            pieces.push(&[][..]);
        }
        let (piece, after) = tail.split_at(usize::from(*length).clamp(1, tail.len()));
        pieces.push(piece);
        tail = after;
    }
    pieces
}

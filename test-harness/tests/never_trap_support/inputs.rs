//! Damage for `never_trap`'s inputs: a JSON writer that injects anomalies while it writes (duplicate keys,
//! dropped and unknown keys, numbers no f64 or u64 holds, wrong types, deep nesting, long strings), byte-level
//! damage (truncation, flips, invalid UTF-8), SSE stream damage (garbage and oversized events, CR/LF variants,
//! truncation), random chunking, and request methods, paths and header fields. Everything draws from the
//! caller's seeded generator, so a run repeats.

#![allow(clippy::indexing_slicing)] // bounds come from the data's own length

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::Value;

/// Texts that stand in for a JSON value: numbers no f64, u64 or i64 holds, wrong types, strings a careless
/// decoder trips on, and a few that are not JSON at all.
const ATOMS: &[&str] = &[
    "1e999",
    "-1e999",
    "1e-999",
    "18446744073709551616",
    "18446744073709551615",
    "-9223372036854775809",
    "9007199254740993",
    "4294967296",
    "123456789012345678901234567890123456789012345678901234567890",
    "-0",
    "1E+2",
    "0.1e1",
    "1.7976931348623157e308",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "1.",
    ".5",
    "+1",
    "0x10",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "\"\"",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\uZZZZ\"",
    "\"\\\"",
    "\"unterminated",
    "[]",
    "{}",
    "[null]",
    "{\"\":null}",
    "\"{{text}}\"",
    "\"\u{202e}\u{fffd}\u{1f600}\"",
    "\"</script><script>alert(1)</script>\"",
    "\"\\r\\nx-injected: 1\"",
    "[1,]",
    "{\"a\":1,}",
    "{\"a\"}",
    "{1:2}",
    "'single'",
];

/// Byte sequences that are not UTF-8: lone continuation bytes, overlong forms, surrogates, past U+10FFFF,
/// truncated sequences.
const INVALID_UTF8: &[&[u8]] = &[
    &[0xff],
    &[0xfe, 0xff],
    &[0x80],
    &[0xc0, 0x80],
    &[0xc1, 0xbf],
    &[0xed, 0xa0, 0x80],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0xf8, 0x88, 0x80, 0x80, 0x80],
    &[0xe2, 0x82],
    &[0xf0, 0x9f, 0x98],
];

/// Writes `value` as JSON text, replacing or adding anomalies at about `rate` of its nodes.
pub fn json(rng: &mut StdRng, value: &Value, rate: f64) -> Vec<u8> {
    let mut out = Vec::new();
    write(rng, value, rate, &mut out);
    out
}

fn write(rng: &mut StdRng, value: &Value, rate: f64, out: &mut Vec<u8>) {
    if rng.gen_bool(rate) {
        anomaly(rng, value, out);
        return;
    }
    match value {
        Value::Object(map) => {
            out.push(b'{');
            let mut first = true;
            let mut sep = |out: &mut Vec<u8>| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
            };
            for (key, item) in map {
                if rng.gen_bool(rate / 3.0) {
                    continue;
                }
                sep(out);
                string(key.as_bytes(), out);
                out.push(b':');
                write(rng, item, rate, out);
                if rng.gen_bool(rate / 2.0) {
                    // A duplicate key, with the same, an anomalous or a wrong-typed value.
                    sep(out);
                    string(key.as_bytes(), out);
                    out.push(b':');
                    if rng.gen_bool(0.5) {
                        anomaly(rng, item, out);
                    } else {
                        write(rng, item, rate, out);
                    }
                }
            }
            if rng.gen_bool(rate / 3.0) {
                sep(out);
                let key = ["__proto__", "", "model", "stream", "messages", "x\u{0}y", "\u{fffd}"]
                    .choose(rng)
                    .copied()
                    .unwrap_or_default();
                string(key.as_bytes(), out);
                out.push(b':');
                anomaly(rng, value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            let mut first = true;
            for item in items {
                if rng.gen_bool(rate / 3.0) {
                    continue;
                }
                let copies = if rng.gen_bool(rate / 3.0) { rng.gen_range(2..40) } else { 1 };
                for _ in 0..copies {
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                    write(rng, item, rate, out);
                }
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// Something other than `value` where `value` belongs.
fn anomaly(rng: &mut StdRng, value: &Value, out: &mut Vec<u8>) {
    match rng.gen_range(0..10) {
        0..=3 => out.extend_from_slice(ATOMS.choose(rng).copied().unwrap_or("null").as_bytes()),
        4 => deep(rng, out),
        5 => {
            let len = *[1usize, 100, 4096, 40_000].choose(rng).unwrap_or(&1);
            let mut text = vec![b'x'; len];
            if rng.gen_bool(0.5) {
                let at = rng.gen_range(0..=text.len());
                let bad = INVALID_UTF8.choose(rng).copied().unwrap_or(&[0xff]);
                text.splice(at..at, bad.iter().copied());
            }
            out.push(b'"');
            out.extend(text);
            out.push(b'"');
        }
        6 => {
            // The right value in the wrong container.
            let inner = serde_json::to_vec(value).unwrap_or_default();
            if rng.gen_bool(0.5) {
                out.push(b'[');
                out.extend(inner);
                out.push(b']');
            } else {
                out.extend_from_slice(b"{\"value\":");
                out.extend(inner);
                out.push(b'}');
            }
        }
        7 => string(&serde_json::to_vec(value).unwrap_or_default(), out),
        8 => {
            let digits: String =
                (0..rng.gen_range(1..80)).map(|_| char::from(b'0' + rng.gen_range(0..10))).collect();
            let sign = if rng.gen_bool(0.3) { "-" } else { "" };
            let exp = rng.gen_range(-2000i32..2000);
            out.extend(format!("{sign}{digits}e{exp}").into_bytes());
        }
        _ => {
            let n = rng.gen_range(0..5);
            let mut inner = Value::Null;
            for _ in 0..n {
                inner = Value::Array(vec![inner]);
            }
            out.extend(serde_json::to_vec(&inner).unwrap_or_default());
        }
    }
}

/// Nesting from a few levels to far deeper than any parser's recursion limit, closed or not.
fn deep(rng: &mut StdRng, out: &mut Vec<u8>) {
    let depth = *[3usize, 64, 127, 128, 129, 300, 2_000, 20_000].choose(rng).unwrap_or(&3);
    let objects = rng.gen_bool(0.4);
    for _ in 0..depth {
        out.extend_from_slice(if objects { b"{\"a\":" } else { b"[" });
    }
    out.extend_from_slice(b"1");
    if rng.gen_bool(0.8) {
        for _ in 0..depth {
            out.push(if objects { b'}' } else { b']' });
        }
    }
}

/// A JSON string of raw bytes (escaping quotes, backslashes and control characters, nothing else).
fn string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => out.extend(format!("\\u{b:04x}").into_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// One to three byte-level edits: truncation, flips, invalid UTF-8, deletions, repeats, stray syntax.
pub fn bytes(rng: &mut StdRng, data: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..=3) {
        let len = data.len();
        let at = rng.gen_range(0..=len);
        match rng.gen_range(0..8) {
            0 | 1 => data.truncate(at),
            2 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] ^= rng.gen_range(1..=255u8);
            }
            3 => {
                let bad = INVALID_UTF8.choose(rng).copied().unwrap_or(&[0xff]);
                data.splice(at..at, bad.iter().copied());
            }
            4 => {
                let end = rng.gen_range(at..=len.min(at + 64));
                data.drain(at..end);
            }
            5 => {
                let end = rng.gen_range(at..=len.min(at + 256));
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
            6 => {
                let b = *b"{}[]\":,\\ \n\t0e-+.\0".choose(rng).unwrap_or(&b'{');
                data.insert(at, b);
            }
            _ => {
                let end = rng.gen_range(at..=len.min(at + 16));
                let fill: Vec<u8> = (at..end).map(|_| rng.gen()).collect();
                data.splice(at..end, fill);
            }
        }
    }
}

/// Events that do not belong in a provider's stream, or are malformed.
const GARBAGE_EVENTS: &[&str] = &[
    "data: {\"garbage\n\n",
    "data: {}\n\n",
    "data: null\n\n",
    "data: 1e999\n\n",
    "data: []\n\n",
    "data: \"text\"\n\n",
    "data:\n\n",
    "data\n\n",
    "data: [DONE]\n\n",
    ": keep-alive\n\n",
    "retry: 10000\n\n",
    "id: 42\n\n",
    "\n\n\n\n",
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1e999}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":18446744073709551616,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":7,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n",
    "data: {\"choices\":[{\"index\":4294967296,\"delta\":{\"content\":\"x\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":99,\"function\":{\"arguments\":\"{\"}}]}}]}\n\n",
    "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1e300}}\n\n",
    "data: {\"candidates\":null}\n\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":1}}]}}],\"usageMetadata\":{\"promptTokenCount\":18446744073709551616}}\n\n",
    "data: {\"error\":{\"code\":500,\"message\":\"internal\",\"status\":\"INTERNAL\"}}\n\n",
    "event: \u{fffd}\ndata: \u{fffd}\n\n",
];

/// A damaged copy of a provider's SSE stream: events mutated, dropped, repeated or swapped, garbage and
/// oversized events inserted, line endings changed, the end cut off, bytes flipped.
pub fn sse(rng: &mut StdRng, stream: &str, max_event_bytes: usize) -> Vec<u8> {
    let mut events: Vec<Vec<u8>> =
        stream.split_inclusive("\n\n").map(|e| e.as_bytes().to_vec()).filter(|e| !e.is_empty()).collect();
    let rate = *[0.0, 0.02, 0.1, 0.3].choose(rng).unwrap_or(&0.0);
    for event in &mut events {
        if rng.gen_bool(rate) {
            *event = mutate_event(rng, event);
        }
    }
    for _ in 0..rng.gen_range(0..3) {
        let at = rng.gen_range(0..=events.len());
        match rng.gen_range(0..6) {
            0 | 1 => events.insert(at, GARBAGE_EVENTS.choose(rng).copied().unwrap_or("").as_bytes().to_vec()),
            2 if at < events.len() => {
                events.remove(at);
            }
            3 if at < events.len() => {
                let copy = events[at].clone();
                events.insert(at, copy);
            }
            4 if at + 1 < events.len() => events.swap(at, at + 1),
            5 => events.insert(at, oversized_event(rng, max_event_bytes)),
            _ => {}
        }
    }
    let mut out: Vec<u8> = events.concat();
    match rng.gen_range(0..6) {
        0 => out = replace_lf(&out, b"\r\n"),
        1 => out = replace_lf(&out, b"\r"),
        2 => {
            let mut mixed = Vec::with_capacity(out.len() + out.len() / 8);
            for &b in &out {
                if b == b'\n' {
                    mixed.extend_from_slice(
                        [&b"\n"[..], b"\r\n", b"\r"].choose(rng).copied().unwrap_or(b"\n"),
                    );
                } else {
                    mixed.push(b);
                }
            }
            out = mixed;
        }
        _ => {}
    }
    if rng.gen_bool(0.25) {
        let at = rng.gen_range(0..=out.len());
        out.truncate(at);
    }
    if rng.gen_bool(0.1) {
        bytes(rng, &mut out);
    }
    out
}

fn mutate_event(rng: &mut StdRng, event: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("data:").map(str::trim).and_then(|d| serde_json::from_str::<Value>(d).ok()) {
            Some(value) => {
                out.extend_from_slice(b"data: ");
                out.extend(json(rng, &value, 0.15));
                out.push(b'\n');
            }
            None => out.extend_from_slice(line.as_bytes()),
        }
    }
    if rng.gen_bool(0.2) {
        bytes(rng, &mut out);
    }
    out
}

/// An event just over the per-event bound, as plain data or as a provider-shaped delta.
fn oversized_event(rng: &mut StdRng, max_event_bytes: usize) -> Vec<u8> {
    let filler = "x".repeat(max_event_bytes + rng.gen_range(1..64));
    let data = if rng.gen_bool(0.5) {
        filler
    } else {
        format!("{{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{filler}\"}}}}]}}")
    };
    format!("data: {data}\n\n").into_bytes()
}

fn replace_lf(data: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for &b in data {
        if b == b'\n' {
            out.extend_from_slice(with);
        } else {
            out.push(b);
        }
    }
    out
}

/// Splits a body into chunks as a network would: whole, a few random cuts, small pieces, or (for small
/// bodies) one byte at a time.
pub fn chunks(rng: &mut StdRng, data: &[u8]) -> Vec<Vec<u8>> {
    if data.is_empty() {
        return Vec::new();
    }
    // At most a few hundred chunks: each body callback hands the guest everything buffered so far, so
    // thousands of tiny chunks of a large body cost quadratic copying in the host and the guest.
    let floor = data.len() / 256;
    let max = match rng.gen_range(0..10) {
        0..=3 => return vec![data.to_vec()],
        4..=7 => data.len() / rng.gen_range(1..6),
        8 => rng.gen_range(1..32),
        _ if data.len() <= 2048 => 1,
        _ => rng.gen_range(1..512),
    }
    .max(floor)
    .max(1);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let take = rng.gen_range(1..=max).min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        out.push(chunk.to_vec());
        rest = tail;
    }
    out
}

/// Methods, mostly the ones AI clients send.
pub fn method(rng: &mut StdRng) -> String {
    let odd =
        ["PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get", "post", "PRI", "", "G E T"];
    match rng.gen_range(0..10) {
        0..=3 => "GET".into(),
        4..=7 => "POST".into(),
        _ => odd.choose(rng).copied().unwrap_or("GET").into(),
    }
}

/// Paths the config gives meaning to, and odd variants of them.
pub fn path(rng: &mut StdRng) -> String {
    const KNOWN: &[&str] = &[
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/models",
        "/v1/models/gpt-4o",
        "/summarize/v2",
        "/classify",
        "/extract",
        "/.well-known/tollgate/openapi.json",
        "/health",
        "/admin/users",
        "/tollgate/ping",
        "/jwt-only/x",
        "/",
        "/v1",
        "/v1/",
        "/api/orders/17",
    ];
    const ODD: &[&str] = &[
        "",
        "*",
        "v1/chat/completions",
        "//v1//chat/completions",
        "/V1/Chat/Completions",
        "/v1/chat%2Fcompletions",
        "/v1/chat/completions/",
        "/v1/chat/completions/../../admin/x",
        "/v1/./models",
        "/%2e%2e/admin",
        "/%zz",
        "/%00",
        "/v1/chat/completions%00.json",
        "/\u{fffd}\u{202e}",
        "/v1/chat/completions#frag",
        "http://evil.example/v1/chat/completions",
        "/classify;v=1",
        "/summarize/v2/",
        "/summarize",
        "/.well-known/tollgate/",
    ];
    let mut path = if rng.gen_bool(0.8) {
        KNOWN.choose(rng).copied().unwrap_or("/").to_string()
    } else {
        ODD.choose(rng).copied().unwrap_or("/").to_string()
    };
    match rng.gen_range(0..20) {
        0 => path.push_str("?stream=true&model=gpt-4o"),
        1 => path.push_str("?a=%zz&&=&b"),
        2 => path.push('?'),
        3 => path.push_str(&format!("?q={}", "a".repeat(rng.gen_range(100..9000)))),
        4 => path.push_str(&format!("/{}", "seg/".repeat(rng.gen_range(10..3000)))),
        5 => path.push_str("?key=sk-xx&api-key=1"),
        _ => {}
    }
    path
}

/// Header fields a client might send, some of them hostile; never CR, LF or NUL (no proxy forwards those).
pub fn headers(rng: &mut StdRng) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if rng.gen_bool(0.7) {
        let ct = [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "text/plain",
            "multipart/form-data; boundary=x",
            "",
            "application/x-www-form-urlencoded",
            "\u{fffd}",
        ];
        out.push(("content-type".into(), ct.choose(rng).copied().unwrap_or("").into()));
    }
    let n = rng.gen_range(0..5);
    for _ in 0..n {
        let (name, value) = match rng.gen_range(0..16) {
            0 => ("accept", "text/event-stream".to_string()),
            1 => ("x-request-id", value(rng)),
            2 => ("x-team", ["red", "blue", ""].choose(rng).copied().unwrap_or("red").to_string()),
            3 => (
                "x-forwarded-for",
                ["10.0.0.1", "::1, 10.1.2.3", "garbage", ",,,", "::ffff:10.1.2.3"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("")
                    .to_string(),
            ),
            4 => ("x-tollgate-cluster", "admin_cluster".to_string()),
            5 => ("x-tollgate-consumer", "alice".to_string()),
            6 => (
                "content-length",
                ["0", "-1", "18446744073709551616", "abc", "5"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("0")
                    .to_string(),
            ),
            7 => ("transfer-encoding", "chunked".to_string()),
            8 => ("cookie", format!("session={}; a=b", value(rng))),
            9 => ("x-internal", value(rng)),
            10 => ("anthropic-version", value(rng)),
            11 => ("x-goog-api-key", value(rng)),
            12 => ("user-agent", value(rng)),
            13 => ("X-Mixed-Case", value(rng)),
            14 => ("x-tollgate-trace", value(rng)),
            _ => ("accept-encoding", "gzip, br".to_string()),
        };
        out.push((name.to_string(), value));
    }
    if rng.gen_bool(0.1) && !out.is_empty() {
        let dup = out[rng.gen_range(0..out.len())].clone();
        out.push(dup);
    }
    out
}

/// A header value: short, unicode, control characters other than CR/LF/NUL, or huge.
pub fn value(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => String::new(),
        1 => "\u{fffd}\u{1f600}\u{202e}é".into(),
        2 => "a\tb\u{7}\u{1b}[31m".into(),
        3 => " padded ".into(),
        4 if rng.gen_bool(0.2) => "v".repeat(rng.gen_range(8_000..70_000)),
        _ => format!("{:x}", rng.gen::<u64>()),
    }
}

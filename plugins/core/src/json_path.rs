//! Where in a JSON document a `serde_json` error happened, as a path (`auth.consumers[0].api_keys[1]`).
//!
//! serde_json reports a line and a column; a user wants the setting or the request field. Rather than
//! wrap every deserializer in a path tracker (serde_path_to_error instantiates a tracking copy of every
//! visitor for every type it reads — a third of the wasm module), the path is recovered after the fact by
//! re-reading the text up to the error's offset. It runs only when parsing has already failed.
//!
//! serde_json reports an error just after the token that caused it: after a value of the wrong type, after
//! an unknown key, after the `}` of an object that lacks a field. So the path is the key (or index) most
//! recently read at that offset, in each container still open there.

/// The path of the value `error` points at in `text` ("" for the root or when it cannot tell).
pub fn error_path(text: &[u8], error: &serde_json::Error) -> String {
    let offset = offset_of(text, error.line(), error.column());
    // A value serde buffers before reading it (an internally tagged enum) reports its errors late: after
    // the value, or after its parent's `}` when it is the parent's last member. An unknown key is found
    // where it stands instead: its last occurrence as a key before the reported offset.
    let message = error.to_string();
    // Keys longer than any real field name are not searched for: the search is a pass per key byte.
    let unknown = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
    if let Some(key) = unknown.filter(|key| key.len() <= 128) {
        // The last occurrence, unless it sits inside an earlier occurrence's value (`"x": {"x": 1}`).
        let mut best: Option<String> = None;
        // At most a few: each look is a pass over the text, and the text may be a hostile request body.
        for end in key_ends_before(text, key, offset).take(8) {
            let path = path_at(text, end);
            match &best {
                Some(inner)
                    if inner.strip_prefix(path.as_str()).is_some_and(|r| r.starts_with(['.', '['])) => {}
                Some(_) => break,
                None => {}
            }
            best = Some(path);
        }
        if let Some(path) = best {
            return path;
        }
    }
    if message.contains("did not match any variant of untagged enum") {
        return path_at(text, buffered_value_end(text, offset));
    }
    path_at(text, offset)
}

/// Where a buffered value that failed ends, given where serde_json reported it. Its parent's `}` or `]`
/// was read too when the value was the parent's last member: then the text goes on with something other
/// than `,` (or ends), and the value ends before that closer. (A last member whose parent is followed by
/// `,` cannot be told from a member that is not last; the path then names the parent.)
fn buffered_value_end(text: &[u8], offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    let Some(last) = before.iter().rposition(|b| !b.is_ascii_whitespace()) else {
        return offset;
    };
    let next = text.get(offset..).and_then(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()));
    let closer = matches!(before.get(last), Some(b'}' | b']'));
    if closer && next != Some(&b',') {
        last
    } else {
        offset
    }
}

/// Just past each `"key"` written as an object key (followed by `:`) before `offset`, last first.
fn key_ends_before<'a>(text: &'a [u8], key: &str, offset: usize) -> impl Iterator<Item = usize> + 'a {
    let quoted = serde_json::to_string(key).unwrap_or_default().into_bytes();
    let text = text.get(..offset).unwrap_or(text);
    let starts = (text.len() + 1).saturating_sub(quoted.len());
    (0..starts).rev().filter_map(move |start| {
        let end = start + quoted.len();
        let is_key = !quoted.is_empty()
            && text.get(start..end) == Some(quoted.as_slice())
            && text
                .get(end..)
                .is_some_and(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':'));
        is_key.then_some(end)
    })
}

/// The byte offset of serde_json's (1-based line, column = bytes into that line).
fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    if line > 1 {
        let mut newlines = 0;
        for (i, &b) in text.iter().enumerate() {
            if b == b'\n' {
                newlines += 1;
                if newlines == line - 1 {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    start.saturating_add(column).min(text.len())
}

enum Frame {
    /// An open object: the key last read, and whether the next string is a key.
    Object { key: Option<String>, expect_key: bool },
    /// An open array: the index of the element being read.
    Array { index: usize },
}

/// The path of the value being read at `offset`: every open container's current key or index.
pub fn path_at(text: &[u8], offset: usize) -> String {
    let text = text.get(..offset).unwrap_or(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'{' => stack.push(Frame::Object { key: None, expect_key: true }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let end = string_end(text, i);
                if let Some(Frame::Object { key, expect_key: true }) = stack.last_mut() {
                    *key = Some(unescape(text.get(i..end).unwrap_or_default()));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

/// The index just past the string that opens at `start` (its closing quote, or the end of the text).
fn string_end(text: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// A key as its text (escapes resolved); a key cut off or malformed is shown as it was written.
fn unescape(quoted: &[u8]) -> String {
    serde_json::from_slice::<String>(quoted).unwrap_or_else(|_| {
        let inner = quoted.strip_prefix(b"\"").unwrap_or(quoted);
        String::from_utf8_lossy(inner.strip_suffix(b"\"").unwrap_or(inner)).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        name: String,
        #[serde(default)]
        limit: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        #[serde(rename = "we\"ird")]
        weird: Vec<Vec<u8>>,
    }

    fn path_of(text: &str) -> String {
        let err = serde_json::from_str::<Config>(text).unwrap_err();
        error_path(text.as_bytes(), &err)
    }

    #[test]
    fn names_the_value_of_the_wrong_type() {
        assert_eq!(path_of(r#"{"rules": [{"name": "a"}, {"name": "b", "limit": "x"}]}"#), "rules[1].limit");
        assert_eq!(path_of(r#"{"rules": [{"name": 5}]}"#), "rules[0].name");
        assert_eq!(path_of(r#"{"rules": 5}"#), "rules");
    }

    #[test]
    fn names_an_unknown_key_where_it_stands() {
        assert_eq!(path_of(r#"{"rules": [{"name": "a", "limt": 1}]}"#), "rules[0].limt");
        assert_eq!(path_of(r#"{"rule": []}"#), "rule");
    }

    #[test]
    fn names_the_object_that_lacks_a_field() {
        assert_eq!(path_of(r#"{"rules": [{"name": "a"}, {"limit": 1}]}"#), "rules[1]");
    }

    #[test]
    fn reads_keys_with_escapes_and_text_across_lines() {
        let text = "{\n  \"nested\": {\n    \"we\\\"ird\": [[1, 2], [3, 300]]\n  }\n}";
        assert_eq!(path_of(text), "nested.we\"ird[1][1]");
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Source {
        Peer {},
        Header { name: String },
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        n: u8,
        source: Source,
    }

    #[test]
    fn an_unknown_key_in_a_buffered_value_is_found_where_it_stands() {
        for text in [
            r#"{"inner": {"source": {"from": "peer", "zz": 1}}}"#,
            r#"{"inner": {"source": {"from": "peer", "zz": 1}, "n": 1}}"#,
            r#"{"inner": {"n": 1, "source": {"from": "header", "name": "x", "zz": {"zz": 1}}}}"#,
        ] {
            let err = serde_json::from_str::<Outer>(text).unwrap_err();
            assert_eq!(error_path(text.as_bytes(), &err), "inner.source.zz", "{text}");
        }
    }

    #[test]
    fn strings_holding_brackets_do_not_confuse_it() {
        assert_eq!(path_of(r#"{"rules": [{"name": "a{[,]}\"", "limit": -1}]}"#), "rules[0].limit");
    }

    #[test]
    fn the_root_and_broken_text_give_a_path_or_nothing_never_a_panic() {
        assert_eq!(path_of("5"), "");
        for text in ["", "{", "{\"a", "{\"a\":", "[[[[", "\"\\", "}}]]", "{\"rules\": [{\"name\": \"a\"}"] {
            let _ = path_at(text.as_bytes(), text.len());
            let _ = path_at(text.as_bytes(), usize::MAX);
        }
        assert_eq!(offset_of(b"ab\ncd", 9, 9), 5);
    }
}

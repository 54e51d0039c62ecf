/// An ordered multi-map of HTTP header fields. Names are kept lower-case, as HTTP/2 and Envoy require,
/// so lookups are case-insensitive by construction.
///
/// Every name and value lives in one string, the fields being spans of it: a head read from the proxy is one
/// allocation for its text and one for its spans, however many fields it has (the request path reads a head
/// on every request).
#[derive(Clone, Default)]
pub struct Headers {
    text: String,
    fields: Vec<Field>,
}

/// One field: the name is `text[start..name_end]`, the value `text[value_start..end]`.
#[derive(Clone, Copy, Debug)]
struct Field {
    start: usize,
    name_end: usize,
    value_start: usize,
    end: usize,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|f| self.is_named(f, name)).map(|f| self.value(f))
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.iter().filter(move |f| self.is_named(f, name)).map(|f| self.value(f))
    }

    /// Compares bytes: the names are ASCII in practice, and a lookup need not slice every value it passes.
    fn is_named(&self, field: &Field, name: &str) -> bool {
        let own = self.text.as_bytes().get(field.start..field.name_end).unwrap_or_default();
        own.eq_ignore_ascii_case(name.as_bytes())
    }

    fn value(&self, field: &Field) -> &str {
        self.text.get(field.value_start..field.end).unwrap_or("")
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a field, keeping any existing values of the same name.
    pub fn append(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let start = self.text.len();
        self.text.push_str(name.as_ref());
        let name_end = self.text.len();
        if let Some(pushed) = self.text.get_mut(start..name_end) {
            pushed.make_ascii_lowercase();
        }
        self.text.push_str(value.as_ref());
        self.fields.push(Field { start, name_end, value_start: name_end, end: self.text.len() });
    }

    /// Replaces every value of `name` with one value.
    pub fn set(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        self.remove(name.as_ref());
        self.append(name, value);
    }

    /// Removes every value of `name`. (Its text stays in the buffer until the headers are dropped.)
    pub fn remove(&mut self, name: &str) {
        let text = self.text.as_bytes();
        self.fields.retain(|f| {
            !text.get(f.start..f.name_end).unwrap_or_default().eq_ignore_ascii_case(name.as_bytes())
        });
    }

    /// Drops the pseudo-headers (`:path`, `:status`, ...).
    pub(crate) fn retain_regular(&mut self) {
        let text = self.text.as_bytes();
        self.fields.retain(|f| text.get(f.start) != Some(&b':') || f.start == f.name_end);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|f| (field_name(&self.text, f), self.text.get(f.value_start..f.end).unwrap_or("")))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Reads a header map as proxy-wasm serializes it (`proxy_get_header_map_pairs`): a little-endian `u32`
    /// count, then each field's name and value lengths (`u32` each), then each name and value followed by a
    /// NUL. Pseudo-headers (`:path`, ...) are fields like any other. Values that are not UTF-8 (HTTP allows
    /// obs-text) are read lossily rather than trusted. A malformed buffer (which a proxy never sends) yields
    /// the fields that could be read.
    pub fn from_serialized(mut bytes: Vec<u8>) -> Headers {
        let lengths = match serialized_lengths(&bytes) {
            Some(lengths) => lengths,
            None => return Headers::default(),
        };
        let table = 4 + 8 * lengths.len();
        bytes.drain(..table.min(bytes.len()));
        let mut fields = field_spans(bytes.len(), &lengths);
        match String::from_utf8(bytes) {
            Ok(mut text) => {
                // Names are lower-cased in place; a span that splits a character (a proxy never sends one)
                // ends the map there.
                for (i, field) in fields.iter().enumerate() {
                    let Some(name) = text.get_mut(field.start..field.name_end) else {
                        fields.truncate(i);
                        break;
                    };
                    name.make_ascii_lowercase();
                    if text.get(field.value_start..field.end).is_none() {
                        fields.truncate(i);
                        break;
                    }
                }
                Headers { text, fields }
            }
            Err(invalid) => {
                let bytes = invalid.as_bytes();
                let pair =
                    |f: &Field| Some((bytes.get(f.start..f.name_end)?, bytes.get(f.value_start..f.end)?));
                fields
                    .iter()
                    .map_while(pair)
                    .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
                    .collect()
            }
        }
    }
}

/// The spans of NUL-separated names and values of the given lengths in a text of `len` bytes, up to the first
/// that does not fit.
fn field_spans(len: usize, lengths: &[(usize, usize)]) -> Vec<Field> {
    let mut fields = Vec::with_capacity(lengths.len());
    let mut at = 0usize;
    for &(name_len, value_len) in lengths {
        let name_end = at.saturating_add(name_len);
        let value_start = name_end.saturating_add(1);
        let end = value_start.saturating_add(value_len);
        if end > len {
            break;
        }
        fields.push(Field { start: at, name_end, value_start, end });
        at = end.saturating_add(1);
    }
    fields
}

fn field_name<'t>(text: &'t str, field: &Field) -> &'t str {
    text.get(field.start..field.name_end).unwrap_or("")
}

/// The (name, value) lengths of a serialized map, `None` when its table does not fit in it.
fn serialized_lengths(bytes: &[u8]) -> Option<Vec<(usize, usize)>> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        let array: [u8; 4] = b.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(array)).ok()
    };
    let count = word(0)?;
    let table = count.checked_mul(8)?.checked_add(4)?;
    if table > bytes.len() {
        return None;
    }
    (0..count).map(|i| Some((word(4 + 8 * i)?, word(8 + 8 * i)?))).collect()
}

/// The fields as pairs: removed fields' text, still in the buffer, is not shown.
impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (n, v) in iter {
            headers.append(n, v);
        }
        headers
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_keep_order() {
        let mut h: Headers = [("X-A", "1"), ("x-b", "2"), ("x-a", "3")].into_iter().collect();
        assert_eq!(h.get("x-a"), Some("1"));
        assert_eq!(h.get_all("X-A").collect::<Vec<_>>(), ["1", "3"]);
        h.set("X-A", "9");
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), ["9"]);
        assert_eq!(h.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["x-b", "x-a"]);
        h.remove("X-B");
        assert_eq!(h.len(), 1);
        assert_eq!(h, [("x-a", "9")].into_iter().collect());
        // What was removed is gone from the printed form too.
        assert_eq!(format!("{h:?}"), r#"[("x-a", "9")]"#);
    }

    /// The proxy-wasm serialization of `pairs`.
    pub(crate) fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(*n);
            out.push(0);
            out.extend(*v);
            out.push(0);
        }
        out
    }

    #[test]
    fn serialized_maps_are_read_whole_lower_cased_and_lossily() {
        let h = Headers::from_serialized(serialize(&[
            (b":path", b"/v1"),
            (b"X-Key", b"abc"),
            (b"empty", b""),
            (b"bin", b"caf\xe9"),
        ]));
        let fields: Vec<_> = h.iter().collect();
        assert_eq!(fields, [(":path", "/v1"), ("x-key", "abc"), ("empty", ""), ("bin", "caf\u{fffd}")]);
        let plain = Headers::from_serialized(serialize(&[(b"a", b"1"), (b"b", b"22")]));
        assert_eq!(plain.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "22")]);
    }

    #[test]
    fn malformed_maps_yield_what_can_be_read() {
        assert!(Headers::from_serialized(Vec::new()).is_empty());
        assert!(Headers::from_serialized(vec![0xff, 0xff, 0xff, 0xff]).is_empty());
        let mut cut = serialize(&[(b"a", b"1"), (b"b", b"22")]);
        cut.truncate(cut.len() - 2);
        assert_eq!(Headers::from_serialized(cut).iter().collect::<Vec<_>>(), [("a", "1")]);
        let mut lying = serialize(&[(b"a", b"1")]);
        lying[4] = 200;
        assert!(Headers::from_serialized(lying).is_empty());
        // Valid UTF-8 whose stated lengths split a character: the map ends before that field.
        let mut split = serialize(&[(b"a", b"1"), ("\u{e9}".as_bytes(), b"x")]);
        split[12] = 1; // the second name's length: one byte of the two of "é"
        split[16] = 2; // its value's: the rest of "é", then the NUL
        assert_eq!(Headers::from_serialized(split).iter().collect::<Vec<_>>(), [("a", "1")]);
    }
}

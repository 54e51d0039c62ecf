/// An ordered multi-map of HTTP header fields. Names are kept lower-case, as HTTP/2 and Envoy require,
/// so lookups are case-insensitive by construction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Appends a field, keeping any existing values of the same name.
    pub fn append(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        self.fields.push((name.as_ref().to_ascii_lowercase(), value.into()));
    }

    /// Replaces every value of `name` with one value.
    pub fn set(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        let name = name.as_ref().to_ascii_lowercase();
        self.fields.retain(|(n, _)| *n != name);
        self.fields.push((name, value.into()));
    }

    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (n, v) in iter {
            headers.append(n, v);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
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
    }
}

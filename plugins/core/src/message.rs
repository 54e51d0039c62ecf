use crate::Headers;

/// What a plugin sees of a request before its body: the pseudo-headers split out, the rest as `headers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// Path including any query string, as the client sent it.
    pub path: String,
    pub authority: String,
    pub scheme: String,
    pub headers: Headers,
}

impl RequestHead {
    /// Builds a head from header pairs as a proxy hands them over, pseudo-headers (`:method`, `:path`, ...)
    /// included.
    pub fn from_pairs<N: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut head = RequestHead::default();
        for (name, value) in pairs {
            match name.as_ref() {
                ":method" => head.method = value.into(),
                ":path" => head.path = value.into(),
                ":authority" => head.authority = value.into(),
                ":scheme" => head.scheme = value.into(),
                other => head.headers.append(other, value.into()),
            }
        }
        head
    }

    /// Builds a head from a header map read whole from the proxy (`Headers::from_serialized`): the
    /// pseudo-headers move to their fields, the rest stay where they are.
    pub fn from_headers(mut headers: Headers) -> Self {
        let mut head = RequestHead::default();
        let mut pseudo = false;
        for (name, value) in headers.iter() {
            let field = match name {
                ":method" => &mut head.method,
                ":path" => &mut head.path,
                ":authority" => &mut head.authority,
                ":scheme" => &mut head.scheme,
                _ => {
                    pseudo |= name.starts_with(':');
                    continue;
                }
            };
            pseudo = true;
            value.clone_into(field);
        }
        if pseudo {
            headers.retain_regular();
        }
        head.headers = headers;
        head
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(p, _)| p)
    }
}

/// What a plugin sees of an upstream response before its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Headers,
}

impl ResponseHead {
    /// As `RequestHead::from_headers`: `:status` read, pseudo-headers left out.
    pub fn from_headers(mut headers: Headers) -> Self {
        let status = headers.get(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        headers.retain_regular();
        ResponseHead { status, headers }
    }

    pub fn from_pairs<N: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut head = ResponseHead::default();
        for (name, value) in pairs {
            if name.as_ref() == ":status" {
                head.status = value.into().parse().unwrap_or(0);
            } else {
                head.headers.append(name, value.into());
            }
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_headers_are_split_out() {
        let head = RequestHead::from_pairs([
            (":method", "POST"),
            (":path", "/v1/chat?x=1"),
            (":authority", "api.example"),
            (":scheme", "https"),
            ("Content-Type", "application/json"),
        ]);
        assert_eq!(head.method, "POST");
        assert_eq!(head.path_only(), "/v1/chat");
        assert_eq!(head.headers.get("content-type"), Some("application/json"));
        assert_eq!(head.headers.len(), 1);
    }

    #[test]
    fn heads_read_from_the_proxy_split_pseudo_headers_out() {
        let map = crate::headers::tests::serialize(&[
            (b":authority", b"api.example"),
            (b":path", b"/v1/chat?x=1"),
            (b":method", b"POST"),
            (b"content-type", b"application/json"),
            (b":scheme", b"https"),
        ]);
        let head = RequestHead::from_headers(Headers::from_serialized(map));
        let pairs = RequestHead::from_pairs([
            (":method", "POST"),
            (":path", "/v1/chat?x=1"),
            (":authority", "api.example"),
            (":scheme", "https"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(head, pairs);
        let map = crate::headers::tests::serialize(&[(b":status", b"503"), (b"x-a", b"1")]);
        let response = ResponseHead::from_headers(Headers::from_serialized(map));
        assert_eq!((response.status, response.headers.len()), (503, 1));
    }

    #[test]
    fn response_status_is_parsed_and_garbage_is_zero() {
        assert_eq!(ResponseHead::from_pairs([(":status", "429")]).status, 429);
        assert_eq!(ResponseHead::from_pairs([(":status", "abc")]).status, 0);
    }
}

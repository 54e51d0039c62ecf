//! A request as the upstream received it, and the JSON the echo reply describes it with.

use base64::Engine as _;
use serde_json::{Map, Value};

/// One request the upstream received, recorded before it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// The request target as sent, query string included (`/v1/chat?x=1`).
    pub path: String,
    /// Header names lowercased (hyper normalises them, as Envoy does), repeats kept in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body as UTF-8, with invalid bytes replaced.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `{"method","path","headers":{..},"body"}`: header names lowercased, repeated headers joined with
    /// `", "`, and `"body_base64"` added only when the body is not UTF-8, so binary bodies survive intact.
    pub fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            let joined = match headers.get(&name).and_then(Value::as_str) {
                Some(previous) => format!("{previous}, {value}"),
                None => value.clone(),
            };
            headers.insert(name, Value::String(joined));
        }
        let mut echo = Map::new();
        echo.insert("method".to_owned(), Value::String(self.method.clone()));
        echo.insert("path".to_owned(), Value::String(self.path.clone()));
        echo.insert("headers".to_owned(), Value::Object(headers));
        echo.insert("body".to_owned(), Value::String(self.body_text()));
        if std::str::from_utf8(&self.body).is_err() {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&self.body);
            echo.insert("body_base64".to_owned(), Value::String(encoded));
        }
        Value::Object(echo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(headers: &[(&str, &str)], body: &[u8]) -> ReceivedRequest {
        ReceivedRequest {
            method: "POST".into(),
            path: "/v1/x?y=1".into(),
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn echo_json_describes_the_request() {
        let req = request(&[("Content-Type", "text/plain"), ("x-a", "1"), ("X-A", "2")], b"hi");
        assert_eq!(
            req.to_json(),
            json!({"method":"POST","path":"/v1/x?y=1","headers":{"content-type":"text/plain","x-a":"1, 2"},"body":"hi"})
        );
        assert_eq!(req.header("x-A"), Some("1"));
        assert_eq!(req.header("absent"), None);
    }

    #[test]
    fn a_binary_body_is_also_given_in_base64() {
        let echo = request(&[], &[0xff, 0x00, b'a']).to_json();
        assert_eq!(echo["body"], json!("\u{fffd}\u{0}a"));
        assert_eq!(echo["body_base64"], json!("/wBh"));
    }
}

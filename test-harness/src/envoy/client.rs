//! A test client for Envoy's listener: one request per fresh connection (so the kernel may hand each to
//! either worker), and the response as the client received it.

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::admin::http_client;
use super::Envoy;

/// A response as the client received it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("body {:?} is not JSON", self.body))
    }

    /// The `(type, code)` of an OpenAI-shaped error body, after checking its content type and that it has
    /// a message.
    pub fn openai_error(&self) -> Result<(String, String)> {
        anyhow::ensure!(
            self.header("content-type") == Some("application/json"),
            "not a JSON error: {self:?}"
        );
        let body = self.json()?;
        let field = |name: &str| body.pointer(&format!("/error/{name}")).and_then(Value::as_str);
        anyhow::ensure!(field("message").is_some_and(|m| !m.is_empty()), "no error message: {body}");
        Ok((field("type").unwrap_or_default().to_owned(), field("code").unwrap_or_default().to_owned()))
    }

    /// `Retry-After` as delta-seconds.
    pub fn retry_after(&self) -> Result<u64> {
        let value = self.header("retry-after").with_context(|| format!("no Retry-After: {self:?}"))?;
        value.parse().with_context(|| format!("Retry-After {value:?} is not delta-seconds"))
    }
}

impl Envoy {
    /// A GET to the listener on a fresh connection.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        self.send(path, headers, None)
    }

    /// A JSON POST to the listener on a fresh connection.
    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Result<Answer> {
        self.send(path, headers, Some(body))
    }

    fn send(&self, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<Answer> {
        self.secrets.request_headers(headers);
        let url = format!("{}{path}", self.base_url());
        // A new agent has no connection pool: every request opens its own connection.
        let agent = http_client();
        let mut response = match body {
            None => {
                let mut request = agent.get(url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()?
            }
            Some(body) => {
                let mut request = agent.post(url).header("content-type", "application/json");
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body)?
            }
        };
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_string()?,
        })
    }
}

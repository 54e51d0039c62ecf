//! Prompt decorators: fixed messages put before and after the messages of every chat request on routes
//! under a path prefix (a house system prompt, a closing reminder), whoever wrote the request.

use serde_json::Map;
use tollgate_ai::chat::{ChatRequest, Content, Message};
use tollgate_core::{ConfigError, ConfigPath};

use crate::config::{check_path, RawDecorator, RawMessage};

/// One decorator, compiled into ready messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Decorator {
    pub path_prefix: String,
    pub prepend: Vec<Message>,
    pub append: Vec<Message>,
}

impl Decorator {
    /// Whether the prefix covers the path on a segment boundary: `/v1` covers `/v1/chat`, not `/v1beta`.
    pub fn covers(&self, path: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        path.strip_prefix(&self.path_prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || self.path_prefix.ends_with('/'))
    }
}

/// Every decorator, in config order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decorators {
    list: Vec<Decorator>,
}

impl Decorators {
    pub fn compile(raw: Vec<RawDecorator>, at: &ConfigPath) -> Result<Decorators, ConfigError> {
        let mut list = Vec::with_capacity(raw.len());
        for (i, decorator) in raw.into_iter().enumerate() {
            let at = at.index(i);
            check_path(&decorator.path_prefix, &at.field("path_prefix"))?;
            if decorator.prepend.is_empty() && decorator.append.is_empty() {
                return Err(at.error("a decorator needs at least one message to prepend or append"));
            }
            let prepend = messages(decorator.prepend, &at.field("prepend"))?;
            let append = messages(decorator.append, &at.field("append"))?;
            list.push(Decorator { path_prefix: decorator.path_prefix, prepend, append });
        }
        Ok(Decorators { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The decorators covering a path, in config order.
    pub fn covering<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Decorator> + 'a {
        self.list.iter().filter(move |d| d.covers(path))
    }

    /// Adds the messages of every decorator covering `path`: prepends in config order before the request's
    /// own messages, appends in config order after them. Returns how many decorators applied.
    pub fn apply(&self, path: &str, request: &mut ChatRequest) -> usize {
        let covering: Vec<&Decorator> = self.covering(path).collect();
        if covering.is_empty() {
            return 0;
        }
        let own = std::mem::take(&mut request.messages);
        let mut messages: Vec<Message> = covering.iter().flat_map(|d| d.prepend.iter().cloned()).collect();
        messages.extend(own);
        messages.extend(covering.iter().flat_map(|d| d.append.iter().cloned()));
        request.messages = messages;
        covering.len()
    }
}

fn messages(raw: Vec<RawMessage>, at: &ConfigPath) -> Result<Vec<Message>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, m)| {
            if m.content.is_empty() {
                return Err(at.index(i).field("content").error("must not be empty"));
            }
            Ok(Message {
                role: m.role.into(),
                content: Some(Content::Text(m.content)),
                name: None,
                tool_calls: None,
                tool_call_id: None,
                extra: Map::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;
    use tollgate_ai::chat::Role;

    use super::*;

    fn decorators(raw: serde_json::Value) -> Result<Decorators, String> {
        let raw: Vec<RawDecorator> = serde_json::from_value(raw).unwrap();
        Decorators::compile(raw, &ConfigPath::root().field("decorators")).map_err(|e| e.to_string())
    }

    fn chat(messages: serde_json::Value) -> ChatRequest {
        serde_json::from_value(json!({"model": "m", "messages": messages})).unwrap()
    }

    fn texts(request: &ChatRequest) -> Vec<(Role, String)> {
        request.messages.iter().map(|m| (m.role, m.text())).collect()
    }

    #[test]
    fn covering_decorators_wrap_the_request_in_config_order() {
        let d = decorators(json!([
            {"path_prefix": "/v1", "prepend": [{"role": "system", "content": "house rules"}]},
            {"path_prefix": "/v1/chat", "prepend": [{"role": "system", "content": "chat rules"}],
             "append": [{"role": "user", "content": "answer briefly"}]},
            {"path_prefix": "/other", "prepend": [{"role": "system", "content": "never"}]}
        ]))
        .unwrap();
        let mut request = chat(json!([{"role": "user", "content": "hi"}]));
        assert_eq!(d.apply("/v1/chat/completions?x=1", &mut request), 2);
        assert_eq!(
            texts(&request),
            vec![
                (Role::System, "house rules".into()),
                (Role::System, "chat rules".into()),
                (Role::User, "hi".into()),
                (Role::User, "answer briefly".into()),
            ]
        );
    }

    #[test]
    fn prefixes_match_on_segment_boundaries_only() {
        let d = decorators(json!([{"path_prefix": "/v1", "append": [{"role": "user", "content": "x"}]}]))
            .unwrap();
        let mut request = chat(json!([{"role": "user", "content": "hi"}]));
        assert_eq!(d.apply("/v1beta/chat", &mut request), 0);
        assert_eq!(request.messages.len(), 1);
        assert_eq!(d.apply("/v1", &mut request), 1);
        let slash =
            decorators(json!([{"path_prefix": "/", "append": [{"role": "user", "content": "x"}]}])).unwrap();
        assert_eq!(slash.covering("/anything").count(), 1);
    }

    #[test]
    fn bad_decorators_name_their_path() {
        assert_eq!(
            decorators(json!([{"path_prefix": "v1", "prepend": [{"role": "system", "content": "x"}]}]))
                .unwrap_err(),
            "decorators[0].path_prefix: must start with '/'"
        );
        assert_eq!(
            decorators(json!([{"path_prefix": "/v1"}])).unwrap_err(),
            "decorators[0]: a decorator needs at least one message to prepend or append"
        );
        assert_eq!(
            decorators(json!([{"path_prefix": "/v1", "append": [{"role": "user", "content": ""}]}]))
                .unwrap_err(),
            "decorators[0].append[0].content: must not be empty"
        );
    }
}

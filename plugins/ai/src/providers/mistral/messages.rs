//! Mistral's message schema: roles `system`, `user`, `assistant`, `tool`; content parts `text` and
//! `image_url` (OpenAI's `{"url","detail"}` object is accepted as is); and tool call ids of exactly nine
//! ASCII letters or digits.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::providers::openai_wire::Body;

/// Message fields Mistral accepts on every role, and per role beyond those.
const COMMON_FIELDS: &[&str] = &["role", "content"];
const ASSISTANT_FIELDS: &[&str] = &["tool_calls", "prefix"];
const TOOL_FIELDS: &[&str] = &["tool_call_id", "name"];

const ID_LEN: usize = 9;

/// Rewrites the messages in place; everything left out is named in `dropped` (`messages[2].name`,
/// `messages[1].content[0]`).
pub(super) fn adapt(body: &mut Body, dropped: &mut Vec<String>) {
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    let mut ids = ToolCallIds::default();
    for (i, message) in messages.iter_mut().enumerate() {
        let Some(message) = message.as_object_mut() else {
            continue;
        };
        let role = match message.get("role").and_then(Value::as_str) {
            Some("developer") => "system",
            // A legacy function result is a tool result without a call id, which Mistral allows.
            Some("function") => "tool",
            Some(other) => other,
            None => "user",
        }
        .to_string();
        message.insert("role".into(), Value::String(role.clone()));
        let extra: &[&str] = match role.as_str() {
            "assistant" => ASSISTANT_FIELDS,
            "tool" => TOOL_FIELDS,
            _ => &[],
        };
        let unknown: Vec<String> = message
            .keys()
            .filter(|key| !COMMON_FIELDS.contains(&key.as_str()) && !extra.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            message.remove(&key);
            dropped.push(format!("messages[{i}].{key}"));
        }
        keep_supported_parts(message, i, dropped);
        rewrite_ids(message, &mut ids);
    }
}

fn keep_supported_parts(message: &mut Map<String, Value>, i: usize, dropped: &mut Vec<String>) {
    let Some(parts) = message.get_mut("content").and_then(Value::as_array_mut) else {
        return;
    };
    let mut j = 0;
    parts.retain(|part| {
        let kind = part.get("type").and_then(Value::as_str);
        let keep = matches!(kind, Some("text") | Some("image_url"));
        if !keep {
            dropped.push(format!("messages[{i}].content[{j}]"));
        }
        j += 1;
        keep
    });
}

fn rewrite_ids(message: &mut Map<String, Value>, ids: &mut ToolCallIds) {
    if let Some(Value::String(id)) = message.get_mut("tool_call_id") {
        *id = ids.mistral_id(id);
    }
    let calls = message.get_mut("tool_calls").and_then(Value::as_array_mut);
    for call in calls.into_iter().flatten() {
        if let Some(Value::String(id)) = call.get_mut("id") {
            *id = ids.mistral_id(id);
        }
    }
}

/// Maps other providers' call ids (`call_abc...`, `toolu_...`) to ids Mistral accepts. The id is a hash of
/// the original, so an assistant call and the tool result answering it map alike, in this request and in
/// the next; nothing maps back, because responses carry Mistral's own (already valid) ids.
#[derive(Debug, Default)]
pub(super) struct ToolCallIds {
    mapped: BTreeMap<String, String>,
    taken: BTreeSet<String>,
}

impl ToolCallIds {
    pub(super) fn mistral_id(&mut self, original: &str) -> String {
        if let Some(id) = self.mapped.get(original) {
            return id.clone();
        }
        let valid = original.len() == ID_LEN && original.bytes().all(|b| b.is_ascii_alphanumeric());
        let mut id = original.to_string();
        if !valid {
            // Two ids hashing alike is vanishingly rare; a salt keeps them apart within the request.
            for salt in 0u8..=u8::MAX {
                id = hashed_id(original, salt);
                if !self.taken.contains(&id) {
                    break;
                }
            }
        }
        self.taken.insert(id.clone());
        self.mapped.insert(original.to_string(), id.clone());
        id
    }
}

/// Nine base-62 digits of the 64-bit FNV-1a hash of `salt` and `original`.
fn hashed_id(original: &str, salt: u8) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(salt).chain(original.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..ID_LEN)
        .map(|_| {
            let digit = (hash % 62) as u8;
            hash /= 62;
            char::from(match digit {
                0..=9 => b'0' + digit,
                10..=35 => b'a' + (digit - 10),
                _ => b'A' + (digit - 36),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_kept_and_others_hashed_stably() {
        let mut ids = ToolCallIds::default();
        assert_eq!(ids.mistral_id("D681PevKs"), "D681PevKs");
        let first = ids.mistral_id("call_abc123XYZ");
        assert_eq!(first.len(), 9);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(ids.mistral_id("call_abc123XYZ"), first);
        assert_eq!(ToolCallIds::default().mistral_id("call_abc123XYZ"), first);
        assert_ne!(ids.mistral_id("call_abc123XYW"), first);
        assert_ne!(ids.mistral_id("short"), "short");
    }

    #[test]
    fn colliding_hashes_are_salted_apart() {
        let mut ids = ToolCallIds::default();
        let taken = hashed_id("x_1", 0);
        ids.taken.insert(taken.clone());
        let id = ids.mistral_id("x_1");
        assert_ne!(id, taken);
        assert_eq!(id, hashed_id("x_1", 1));
    }
}

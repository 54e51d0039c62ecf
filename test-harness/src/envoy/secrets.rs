//! The secrets audit every end-to-end Envoy runs when it drops: no client credential (API key, JWT) and no
//! provider key may appear in the filter's logs at trace level, in Envoy's access log or in its stats; and
//! no client credential in what went upstream, which the router's debug log prints (`router decoding
//! headers`, the request as it leaves the filter chain). Provider keys do go upstream, in their provider's
//! auth header, so the router's lines are not searched for them. Envoy's own dumps of what the client sent
//! (`http` and `http2` at debug, off unless a test raises them) are not Tollgate's to police and are skipped.
//!
//! Secrets come from the filter config (every `api_key` string and every symmetric JWK's `k`), from the
//! credential headers sent through [`Envoy::get`](super::Envoy::get) and friends, and from
//! [`Envoy::secret`](super::Envoy::secret) for clients the harness does not see (SDKs, load generators).

use std::sync::Mutex;

use serde_json::Value;

/// The component levels the audit needs, put before any a test asks for (later entries win in Envoy).
pub(crate) const AUDIT_LEVELS: &str = "wasm:trace,router:debug";
/// Shorter strings would match by accident (and are no test's real credential).
const MIN_LEN: usize = 8;
/// Request headers that carry a client's credential; `authorization` loses its scheme first.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Client,
    Provider,
}

/// The secrets one Envoy has seen, and where they must never appear.
#[derive(Debug, Default)]
pub(crate) struct SecretsAudit {
    secrets: Mutex<Vec<(Kind, String)>>,
}

impl SecretsAudit {
    /// Starts with the provider keys and shared JWT secrets of the filter config (which may be invalid JSON).
    pub(crate) fn from_config(config: Option<&str>) -> Self {
        let audit = SecretsAudit::default();
        if let Some(value) = config.and_then(|c| serde_json::from_str::<Value>(c).ok()) {
            let mut found = Vec::new();
            config_secrets(&value, &mut found);
            for secret in found {
                audit.add(Kind::Provider, &secret);
            }
        }
        audit
    }

    /// A client credential sent some other way than the harness's client.
    pub(crate) fn client(&self, secret: &str) {
        self.add(Kind::Client, secret);
    }

    /// The credentials among request headers sent through the harness's client.
    pub(crate) fn request_headers(&self, headers: &[(&str, &str)]) {
        for (name, value) in headers {
            if CREDENTIAL_HEADERS.iter().any(|c| name.eq_ignore_ascii_case(c)) {
                let value = value.trim();
                let credential = value.split_once(' ').map_or(value, |(_scheme, rest)| rest.trim());
                self.add(Kind::Client, credential);
            }
        }
    }

    fn add(&self, kind: Kind, secret: &str) {
        if secret.len() < MIN_LEN {
            return;
        }
        let mut secrets = self.secrets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !secrets.iter().any(|(_, s)| s == secret) {
            secrets.push((kind, secret.to_owned()));
        }
    }

    /// Every place a secret appears where it must not, one line each (the secret itself shown redacted).
    pub(crate) fn leaks(&self, log: &str, access_log: &str, stats: &str) -> Vec<String> {
        let secrets = self.secrets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut leaks = Vec::new();
        for (kind, secret) in secrets.iter() {
            let mut report = |place: &str, text: &str| {
                if text.contains(secret.as_str()) {
                    let excerpt: String =
                        text.replace(secret.as_str(), "[SECRET]").chars().take(300).collect();
                    leaks.push(format!("{kind:?} secret {} in {place}: {excerpt}", redacted(secret)));
                }
            };
            for entry in log_entries(log) {
                match component(entry) {
                    "http" | "http2" => {}
                    "router" if *kind == Kind::Provider => {}
                    name => report(&format!("Envoy's log [{name}]"), entry),
                }
            }
            report("the access log", access_log);
            report("the stats", stats);
        }
        leaks
    }
}

/// Enough of a secret to tell which it was, not enough to use it.
fn redacted(secret: &str) -> String {
    format!("{}… ({} bytes)", secret.chars().take(4).collect::<String>(), secret.len())
}

fn config_secrets(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("api_key", Value::String(secret)) => found.push(secret.clone()),
                    ("k", Value::String(secret)) if map.get("kty").and_then(Value::as_str) == Some("oct") => {
                        found.push(secret.clone())
                    }
                    _ => config_secrets(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| config_secrets(item, found)),
        _ => {}
    }
}

/// Envoy's log split into entries: a line opening with `[<date>` starts one; others (multi-line header
/// dumps) continue it.
fn log_entries(log: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in log.split_inclusive('\n') {
        let opens = line.starts_with('[') && line.as_bytes().get(1).is_some_and(u8::is_ascii_digit);
        if opens {
            if let Some(s) = start {
                entries.push(&log[s..offset]);
            }
            start = Some(offset);
        } else if start.is_none() {
            start = Some(offset);
        }
        offset += line.len();
    }
    if let Some(s) = start {
        entries.push(&log[s..]);
    }
    entries
}

/// The logger name of an entry in Envoy's default format, `[time][thread][level][component] ...`.
fn component(entry: &str) -> &str {
    entry.splitn(5, '[').nth(4).and_then(|rest| rest.split(']').next()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str =
        "[2026-12-06 10:00:00.000][12][debug][router] [router.cc:1] [Tags: x] router decoding headers:\n\
':authority', 'gw'\n\
'authorization', 'Bearer tg_client_key_1'\n\
'x-api-key', 'sk-provider-key-1'\n\
[2026-12-06 10:00:00.001][12][debug][http] [conn.cc:1] request headers complete:\n\
'authorization', 'Bearer tg_client_key_2'\n\
[2026-12-06 10:00:00.002][12][info][wasm] [context.cc:1] wasm log tollgate: provider sk-provider-key-2\n";

    fn audit() -> SecretsAudit {
        let config = r#"{"ai": {"providers": [{"api_key": "sk-provider-key-1"}, {"api_key": "sk-provider-key-2"}]},
            "auth": {"jwt_providers": [{"keys": {"jwks": {"keys": [{"kty": "oct", "k": "c2hhcmVkLXNlY3JldA"}]}}}]}}"#;
        let audit = SecretsAudit::from_config(Some(config));
        audit.request_headers(&[
            ("Authorization", "Bearer tg_client_key_1"),
            ("x-other", "tg_not_a_credential"),
        ]);
        audit.client("tg_client_key_2");
        audit
    }

    #[test]
    fn entries_keep_their_continuation_lines_and_name_their_component() {
        let entries = log_entries(LOG);
        assert_eq!(entries.len(), 3);
        assert!(entries[0].contains("'x-api-key'"));
        assert_eq!(entries.iter().map(|e| component(e)).collect::<Vec<_>>(), ["router", "http", "wasm"]);
    }

    #[test]
    fn client_secrets_upstream_and_provider_keys_in_the_filters_log_are_leaks_and_nothing_else() {
        let leaks = audit().leaks(LOG, "GET / 200 c2hhcmVkLXNlY3JldA\n", "tollgate.x: 1\n");
        assert_eq!(leaks.len(), 3, "{leaks:#?}");
        assert!(leaks[0].starts_with("Provider secret sk-p… (17 bytes) in Envoy's log [wasm]"), "{leaks:#?}");
        assert!(leaks[1].starts_with("Provider secret c2hh… (18 bytes) in the access log"), "{leaks:#?}");
        assert!(leaks[2].starts_with("Client secret tg_c… (15 bytes) in Envoy's log [router]"), "{leaks:#?}");
        assert!(leaks.iter().all(|l| !l.contains("tg_client_key_1")), "redacted: {leaks:#?}");
    }

    #[test]
    fn short_values_and_other_headers_are_not_secrets() {
        let audit = SecretsAudit::from_config(Some(r#"{"api_key": "short"}"#));
        audit.request_headers(&[("x-other", "tg_not_a_credential"), ("x-api-key", "tiny")]);
        assert!(audit.leaks("[2026][1][info][wasm] short tg_not_a_credential tiny", "", "").is_empty());
    }
}

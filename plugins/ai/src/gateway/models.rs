//! `GET /v1/models`: the model names this consumer may ask for, in OpenAI's list shape.

use serde_json::{json, Value};
use tollgate_core::LocalReply;

use super::Caller;
use crate::config::{AiConfig, ProviderConfig};

/// The exact (non-wildcard) model names of the config that the caller's credential may use, each once, in
/// config order. Wildcards are left out: they name families, not models a client could pick from a list.
pub fn list(config: &AiConfig, providers: &[ProviderConfig], caller: &Caller<'_>) -> LocalReply {
    let mut seen: Vec<&str> = Vec::new();
    let mut data: Vec<Value> = Vec::new();
    for route in config.router.routes() {
        if route.is_wildcard() || seen.contains(&route.name.as_str()) || !(caller.may_use_model)(&route.name)
        {
            continue;
        }
        seen.push(&route.name);
        let owner = providers.get(route.provider).map_or("", |p| p.settings.name.as_str());
        data.push(json!({ "id": route.name, "object": "model", "created": 0, "owned_by": owner }));
    }
    LocalReply::json(200, "tollgate_ai_models", &json!({ "object": "list", "data": data }))
}

//! The OpenAPI 3.1 document describing every prompt endpoint, built once at config time and served as is.

use serde_json::{json, Map, Value};
use tollgate_core::{ConfigError, ConfigPath, LocalReply};

use crate::config::{check_path, RawOpenApi, DEFAULT_OPENAPI_PATH};
use crate::endpoints::{Endpoint, PromptEndpoints};
use crate::output::Output;
use crate::variables::{Variable, VariableKind};

/// The error statuses every prompt operation can answer with: bad variables, authentication, authorization,
/// limits, and a provider (or its output) failing.
const ERROR_RESPONSES: &[(&str, &str)] = &[
    ("400", "The variables are invalid; error.fields lists every problem."),
    ("401", "No valid credentials."),
    ("403", "The credentials do not allow this endpoint."),
    ("429", "A request, token or budget limit was reached."),
    ("502", "The model failed, or its answer did not match the output schema."),
];

/// The document and where it is served.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenApi {
    pub path: String,
    document: Value,
    bytes: Vec<u8>,
}

impl OpenApi {
    pub fn compile(
        raw: RawOpenApi,
        endpoints: &PromptEndpoints,
        at: &ConfigPath,
    ) -> Result<OpenApi, ConfigError> {
        let path = raw.path.unwrap_or_else(|| DEFAULT_OPENAPI_PATH.to_string());
        check_path(&path, &at.field("path"))?;
        let title = raw.title.unwrap_or_else(|| "Tollgate prompt APIs".to_string());
        let version = raw.version.unwrap_or_else(|| "1.0.0".to_string());
        let document = document(&title, &version, endpoints);
        let bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        Ok(OpenApi { path, document, bytes })
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The serialized document (pretty-printed: people read it as often as generators do).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn reply(&self) -> LocalReply {
        LocalReply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: self.bytes.clone(),
            details: "tollgate_openapi".into(),
        }
    }
}

/// The whole document: `openapi`, `info`, a path item per endpoint path, and the shared components.
pub fn document(title: &str, version: &str, endpoints: &PromptEndpoints) -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints.iter() {
        let item = paths.entry(endpoint.path.clone()).or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(endpoint.method.to_ascii_lowercase(), operation(endpoint));
        }
    }
    let mut error_responses = Map::new();
    for (status, description) in ERROR_RESPONSES {
        error_responses.insert(
            format!("Error{status}"),
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Error": error_schema(), "Usage": usage_schema()},
            "responses": error_responses,
        },
    })
}

fn operation(endpoint: &Endpoint) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({
            "description": "The model's answer.",
            "content": {"application/json": {"schema": success_schema(endpoint)}},
        }),
    );
    for (status, _) in ERROR_RESPONSES {
        responses.insert((*status).into(), json!({"$ref": format!("#/components/responses/Error{status}")}));
    }
    let mut operation = json!({
        "operationId": endpoint.operation_id,
        "requestBody": {
            "required": endpoint.variables.iter().any(|v| v.required),
            "content": {"application/json": {"schema": request_schema(endpoint)}},
        },
        "responses": responses,
    });
    if let (Some(description), Value::Object(map)) = (&endpoint.description, &mut operation) {
        map.insert("description".into(), json!(description));
    }
    operation
}

/// The variables as a closed object: unknown variables are refused, so the schema says so.
fn request_schema(endpoint: &Endpoint) -> Value {
    let properties: Map<String, Value> =
        endpoint.variables.iter().map(|v| (v.name.clone(), variable_schema(v))).collect();
    let required: Vec<&str> =
        endpoint.variables.iter().filter(|v| v.required).map(|v| v.name.as_str()).collect();
    let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if let (false, Value::Object(map)) = (required.is_empty(), &mut schema) {
        map.insert("required".into(), json!(required));
    }
    schema
}

fn variable_schema(variable: &Variable) -> Value {
    let mut schema = Map::new();
    let mut put = |key: &str, value: Value| {
        schema.insert(key.to_string(), value);
    };
    match &variable.kind {
        VariableKind::String { min_length, max_length } => {
            put("type", json!("string"));
            if let Some(n) = min_length {
                put("minLength", json!(n));
            }
            if let Some(n) = max_length {
                put("maxLength", json!(n));
            }
        }
        VariableKind::Number { integer, minimum, maximum } => {
            put("type", json!(if *integer { "integer" } else { "number" }));
            if let Some(n) = minimum {
                put("minimum", json!(n));
            }
            if let Some(n) = maximum {
                put("maximum", json!(n));
            }
        }
        VariableKind::Boolean => put("type", json!("boolean")),
        VariableKind::Enum { values } => {
            put("type", json!("string"));
            put("enum", json!(values));
        }
        VariableKind::Array { items, min_items, max_items } => {
            put("type", json!("array"));
            put("items", json!({"type": items.name()}));
            if let Some(n) = min_items {
                put("minItems", json!(n));
            }
            if let Some(n) = max_items {
                put("maxItems", json!(n));
            }
        }
    }
    if let Some(default) = &variable.default {
        put("default", default.clone());
    }
    if let Some(description) = &variable.description {
        put("description", json!(description));
    }
    Value::Object(schema)
}

fn success_schema(endpoint: &Endpoint) -> Value {
    let result = match &endpoint.output {
        Output::Text => json!({"type": "string", "description": "The model's answer."}),
        Output::Json(schema) => schema.as_json().clone(),
    };
    let versions: Vec<&str> = endpoint.versions.iter().map(|v| v.name.as_str()).collect();
    json!({
        "type": "object",
        "required": ["result", "model", "version", "usage"],
        "properties": {
            "result": result,
            "model": {"type": "string", "description": "The model that answered."},
            "version": {"type": "string", "enum": versions, "description": "The prompt version used."},
            "usage": {"$ref": "#/components/schemas/Usage"},
        },
    })
}

fn usage_schema() -> Value {
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {"prompt_tokens": count, "completion_tokens": count, "total_tokens": count},
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "code": {"type": ["string", "null"], "description": "A stable reason code; also in x-tollgate-reason."},
                    "fields": {
                        "type": "array",
                        "description": "For code invalid_variables: every problem, by variable.",
                        "items": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests;

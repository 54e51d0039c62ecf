//! Prompt endpoints: templates and variable declarations compiled, a client's variables validated and
//! rendered into the chat request (version chosen by request id, decorators added), the completion shaped
//! into the endpoint's answer (JSON output checked against its schema), and the OpenAPI document served.
//!
//! The first byte picks the input's form: even, `prompt section JSON \0 request body \0 completion`, so real
//! configs seed it; odd, a structured endpoint whose template text, variable declarations and values are
//! chosen by the fuzzer (the placeholders it writes name declared variables more often than not).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tollgate_ai::chat::ChatRequest;
use tollgate_core::ConfigPath;
use tollgate_fuzz::fields;
use tollgate_prompt::{PromptConfig, RawPromptConfig};

#[derive(Arbitrary, Debug)]
enum Piece {
    Text(String),
    /// `{{name}}` of the variable with this index, with or without inner spaces.
    Placeholder(u8, bool),
    /// Braces as they are: unclosed, stray or empty placeholders.
    Braces(u8),
}

#[derive(Arbitrary, Debug)]
enum Kind {
    String,
    Number,
    Integer,
    Boolean,
    Enum(Vec<String>),
    Array(u8),
}

/// Mostly valid identifiers, so that templates compile and values get validated.
#[derive(Arbitrary, Debug)]
enum VarName {
    Known(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Declared {
    name: VarName,
    kind: Kind,
    required: bool,
    min: Option<u8>,
    max: Option<u16>,
    default: Option<Scalar>,
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<String>),
}

impl Scalar {
    fn json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => json!(b),
            Scalar::Int(i) => json!(i),
            Scalar::Float(f) => json!(f),
            Scalar::Text(s) => json!(s),
            Scalar::List(items) => json!(items),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Structured {
    variables: Vec<Declared>,
    messages: Vec<(u8, Vec<Piece>)>,
    versions: u8,
    json_output: bool,
    values: Vec<(u8, Scalar)>,
    extra_values: Vec<(String, Scalar)>,
    request_id: String,
    answer: String,
}

impl Declared {
    fn name(&self) -> &str {
        match &self.name {
            VarName::Known(i) => {
                ["text", "topic", "n", "tags", "flag", "x_1", "_", "Style"][usize::from(i % 8)]
            }
            VarName::Raw(name) => name,
        }
    }
}

fn name_of(variables: &[Declared], index: u8) -> &str {
    match variables.len() {
        0 => "missing",
        n => variables[usize::from(index) % n].name(),
    }
}

fn template(pieces: &[Piece], variables: &[Declared]) -> String {
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(s) => text.push_str(s),
            Piece::Placeholder(i, spaced) => match spaced {
                true => text.push_str(&format!("{{{{ {} }}}}", name_of(variables, *i))),
                false => text.push_str(&format!("{{{{{}}}}}", name_of(variables, *i))),
            },
            Piece::Braces(b) => {
                text.push_str(["{{", "}}", "{", "}", "{{}}", "{{ }}", "{{{x}}}"][usize::from(b % 7)])
            }
        }
    }
    text
}

fn declaration(variable: &Declared) -> Value {
    let mut declared = Map::new();
    let kind = match &variable.kind {
        Kind::String => "string",
        Kind::Number => "number",
        Kind::Integer => "integer",
        Kind::Boolean => "boolean",
        Kind::Enum(values) => {
            declared.insert("values".into(), json!(values));
            "enum"
        }
        Kind::Array(items) => {
            declared.insert(
                "items".into(),
                json!(["string", "number", "integer", "boolean"][usize::from(items % 4)]),
            );
            "array"
        }
    };
    declared.insert("type".into(), json!(kind));
    declared.insert("required".into(), json!(variable.required));
    if let Some(min) = variable.min {
        let field =
            if matches!(variable.kind, Kind::Number | Kind::Integer) { "minimum" } else { "min_length" };
        declared.insert(field.into(), json!(min));
    }
    if let Some(max) = variable.max {
        let field =
            if matches!(variable.kind, Kind::Number | Kind::Integer) { "maximum" } else { "max_length" };
        declared.insert(field.into(), json!(max));
    }
    if let Some(default) = &variable.default {
        declared.insert("default".into(), default.json());
    }
    Value::Object(declared)
}

/// The prompt section, the request body and the completion for a structured input.
fn build(input: &Structured) -> (Value, Vec<u8>, Vec<u8>) {
    let variables: BTreeMap<&str, Value> =
        input.variables.iter().map(|v| (v.name(), declaration(v))).collect();
    let roles = ["system", "user", "assistant"];
    let messages: Vec<Value> = input
        .messages
        .iter()
        .map(|(role, pieces)| {
            json!({"role": roles[usize::from(role % 3)], "content": template(pieces, &input.variables)})
        })
        .collect();
    let versions: Vec<Value> = (0..=input.versions % 3)
        .map(|v| json!({"name": format!("v{v}"), "weight": u32::from(v) + 1, "messages": messages}))
        .collect();
    let mut endpoint = json!({
        "path": "/prompts/fuzz", "model": "gpt-4o-mini", "description": "fuzzed",
        "variables": variables, "versions": versions, "temperature": 0.3, "max_tokens": 200
    });
    if input.json_output {
        endpoint["output"] = json!({"mode": "json", "schema": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}, "n": {"type": ["integer", "null"], "maximum": 9},
                           "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
            "required": ["name"], "additionalProperties": false
        }});
    }
    let section = json!({
        "endpoints": [endpoint],
        "decorators": [{"path_prefix": "/prompts", "prepend": [{"role": "system", "content": "Be brief."}]}]
    });
    let mut body = Map::new();
    for (index, value) in &input.values {
        body.insert(name_of(&input.variables, *index).to_string(), value.json());
    }
    for (name, value) in &input.extra_values {
        body.insert(name.clone(), value.json());
    }
    let completion = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": input.answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    });
    (section, Value::Object(body).to_string().into_bytes(), completion.to_string().into_bytes())
}

fn run(section: &Value, body: &[u8], completion: &[u8], request_id: &str) {
    let Ok(raw) = serde_json::from_value::<RawPromptConfig>(section.clone()) else { return };
    let config = match PromptConfig::compile(raw, &ConfigPath::root().field("prompt")) {
        Ok(config) => config,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let _ = config.openapi_reply("GET", "/.well-known/tollgate/openapi.json");
    for endpoint in config.endpoints.iter() {
        let _ = config.endpoints.route("GET", &endpoint.path);
        match endpoint.prepare(body, request_id, &config.decorators) {
            Ok(prepared) => {
                let _ = prepared.body();
                match endpoint.shape_response(&prepared.version, completion) {
                    Ok(shaped) => {
                        let _ = shaped.into_result();
                    }
                    Err(error) => {
                        let _ = error.to_reply();
                    }
                }
            }
            Err(error) => {
                let _ = (error.to_json(), error.to_reply());
            }
        }
    }
    let mut chat = ChatRequest { model: "gpt-4o-mini".into(), ..ChatRequest::default() };
    config.decorators.apply("/prompts/fuzz", &mut chat);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let parts = fields(rest, 3);
        let Ok(section) = serde_json::from_slice::<Value>(parts[0]) else { return };
        let body = parts.get(1).copied().unwrap_or_default();
        let completion = parts.get(2).copied().unwrap_or_default();
        run(&section, body, completion, "request-1");
    } else {
        let Ok(input) = Structured::arbitrary_take_rest(Unstructured::new(rest)) else { return };
        let (section, body, completion) = build(&input);
        run(&section, &body, &completion, &input.request_id);
    }
});

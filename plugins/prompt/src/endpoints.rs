//! The compiled endpoints and how a request finds one.

use crate::error::PromptError;
use crate::output::Output;
use crate::variables::Variables;
use crate::versions::Versions;

/// One prompt endpoint, compiled: everything a request to it needs, checked.
#[derive(Debug)]
pub struct Endpoint {
    pub path: String,
    /// Upper-case: POST, PUT or PATCH.
    pub method: String,
    pub model: String,
    pub description: Option<String>,
    /// Unique across the config; names the OpenAPI operation and the `json_schema` response format.
    pub operation_id: String,
    pub variables: Variables,
    pub versions: Versions,
    pub output: Output,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    /// How long one provider call may take.
    pub timeout: std::time::Duration,
}

/// Every prompt endpoint of the config. A linear scan: configs hold a handful of endpoints, and the
/// scan keeps the declared order (the OpenAPI document's `paths` map is sorted by path all the same).
#[derive(Debug, Default)]
pub struct PromptEndpoints {
    list: Vec<Endpoint>,
}

impl PromptEndpoints {
    pub(crate) fn new(list: Vec<Endpoint>) -> Self {
        PromptEndpoints { list }
    }

    /// The endpoint serving this method and path (a query string is ignored).
    pub fn find(&self, method: &str, path: &str) -> Option<&Endpoint> {
        let path = without_query(path);
        self.list.iter().find(|e| e.method == method && e.path == path)
    }

    /// Like `find`, but a path that is an endpoint for other methods is a 405 naming them, so the caller
    /// can tell "not a prompt endpoint" (`Ok(None)`) from "wrong method".
    pub fn route(&self, method: &str, path: &str) -> Result<Option<&Endpoint>, PromptError> {
        if let Some(endpoint) = self.find(method, path) {
            return Ok(Some(endpoint));
        }
        let path = without_query(path);
        let allowed: Vec<String> =
            self.list.iter().filter(|e| e.path == path).map(|e| e.method.clone()).collect();
        if allowed.is_empty() {
            Ok(None)
        } else {
            Err(PromptError::MethodNotAllowed { method: method.to_string(), allowed })
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Endpoint> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn without_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

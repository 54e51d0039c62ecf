//! Tollgate prompt endpoints: a team publishes a model and versioned prompt templates as an ordinary REST
//! endpoint (typed, validated variables in; `{"result", "model", "version", "usage"}` out, optionally JSON
//! checked against a schema), adds decorator messages to every chat request under a path prefix, and gets
//! an OpenAPI 3.1 document of it all. Owns the `prompt` config section.
//!
//! Pure functions only; the pipeline drives them. For one request to an endpoint:
//! `PromptEndpoints::route` (or `find`) → `Endpoint::prepare` (validate the variables, choose the version by
//! request id, render, decorate) → send `Prepared::body()` through the AI plugin → `Endpoint::shape_response`
//! on its OpenAI-shaped completion; on `Shaped::SchemaMismatch` resend once, then `Shaped::into_result`
//! gives the 502. Plain chat requests get `Decorators::apply`; `PromptConfig::openapi_reply` serves the
//! document.

pub mod config;
pub mod decorators;
pub mod endpoints;
pub mod error;
pub mod openapi;
pub mod output;
pub mod render;
pub mod schema;
pub mod template;
pub mod variables;
pub mod versions;

pub use config::{PromptConfig, RawPromptConfig, DEFAULT_OPENAPI_PATH, DEFAULT_TIMEOUT_MS};
pub use decorators::{Decorator, Decorators};
pub use endpoints::{Endpoint, PromptEndpoints};
pub use error::{FieldError, PromptError, REASONS};
pub use openapi::OpenApi;
pub use output::{Output, Shaped};
pub use render::Prepared;
pub use schema::JsonSchema;
pub use variables::{Values, Variable, VariableKind, Variables};
pub use versions::{Version, Versions};

#[cfg(test)]
mod testing;

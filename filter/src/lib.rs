//! The proxy-wasm filter Envoy loads (`dist/tollgate.wasm`). It is glue only: the root context compiles the
//! JSON configuration into a `tollgate_pipeline::Pipeline`, and each HTTP context reads a phase's input from
//! the host, asks the pipeline, and applies the returned verdict. Owns no config section itself.

mod abi;
mod callout;
mod header_map;
mod host_ports;
mod http;
mod root;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::TollgateRoot::default()) });
}}

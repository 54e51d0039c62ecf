//! Benchmark fixture, not the product: a wasm HTTP filter that reads one request header (`x-api-key`) and
//! continues. `cargo bench --bench envoy` loads it as row T, the cost of running any wasm filter in Envoy at
//! all, against which Tollgate's own cost is compared. Owns no config section and takes no configuration.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(ReadOneHeader) });
}}

struct ReadOneHeader;

impl Context for ReadOneHeader {}

impl HttpContext for ReadOneHeader {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        // Read and dropped: the host call and the copy into the VM are the cost being measured.
        let _key = self.get_http_request_header("x-api-key");
        Action::Continue
    }
}

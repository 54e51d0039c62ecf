use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};
use tollgate_pipeline::Pipeline;

use crate::host_ports::HostPorts;
use crate::http::TollgateHttp;

/// One per VM (that is, per Envoy worker): holds the compiled configuration and hands it to each stream.
#[derive(Default)]
pub struct TollgateRoot {
    pipeline: Option<Rc<Pipeline>>,
    ports: Rc<HostPorts>,
}

impl Context for TollgateRoot {}

impl RootContext for TollgateRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, plugin_configuration_size)
        {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log::error!("configuration rejected: cannot read it from the host ({status:?})");
                return false;
            }
        };
        match Pipeline::from_json(&bytes) {
            Ok(pipeline) => {
                self.pipeline = Some(Rc::new(pipeline));
                log::info!("configuration accepted ({} bytes)", bytes.len());
                true
            }
            Err(e) => {
                // Envoy refuses the filter when this returns false; under ECDS it keeps the previous version.
                log::error!("configuration rejected: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let pipeline = self.pipeline.clone()?;
        Some(Box::new(TollgateHttp::new(pipeline, self.ports.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};
use tollgate_pipeline::Pipeline;

use crate::callout;
use crate::host_ports::HostPorts;
use crate::http::{Outbox, TollgateHttp};

/// One per VM (that is, per Envoy worker): holds the compiled configuration and hands it to each stream.
#[derive(Default)]
pub struct TollgateRoot {
    pipeline: Option<Rc<Pipeline>>,
    ports: Rc<HostPorts>,
    /// Background calls in flight: token → what the pipeline said they are for.
    background: HashMap<u32, String>,
    /// Calls streams left to make after they end (usage reports), sent on the next tick.
    outbox: Outbox,
}

impl Context for TollgateRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let (Some(purpose), Some(pipeline)) = (self.background.remove(&token_id), self.pipeline.as_ref())
        else {
            return;
        };
        let outcome = callout::read_response(num_headers, body_size);
        pipeline.on_background_response(&purpose, &outcome, self.ports.ports());
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let (Some(purpose), Some(pipeline)) = (self.background.remove(&token_id), self.pipeline.as_ref())
        else {
            return;
        };
        let outcome = callout::read_grpc_response(status_code, response_size);
        pipeline.on_background_response(&purpose, &outcome, self.ports.ports());
    }
}

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
                // Store trouble here is a host fault; the limits fail open on it per request as well.
                if let Err(e) = pipeline.prepare(self.ports.ports()) {
                    log::warn!("cannot prepare shared state: {e}");
                }
                // A period of zero stops the ticks a previous configuration may have started.
                let period = pipeline.tick_period().unwrap_or(Duration::ZERO);
                if let Err(status) = hostcalls::set_tick_period(period) {
                    log::warn!("cannot schedule background work ({status:?})");
                }
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

    fn on_tick(&mut self) {
        let Some(pipeline) = self.pipeline.clone() else { return };
        let mut jobs = pipeline.on_tick(self.ports.ports());
        jobs.append(&mut self.outbox.borrow_mut());
        for job in jobs {
            match callout::dispatch(&job.call) {
                Ok(token) => {
                    self.background.insert(token, job.purpose);
                }
                Err(failed) => pipeline.on_background_response(&job.purpose, &failed, self.ports.ports()),
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let pipeline = self.pipeline.clone()?;
        Some(Box::new(TollgateHttp::new(pipeline, self.ports.clone(), self.outbox.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

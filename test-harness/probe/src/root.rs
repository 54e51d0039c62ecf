//! The probe's root context: configuration, ticks, queues, metrics, and a root-level http_call.

use std::time::{Duration, UNIX_EPOCH};

use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, MetricType};

use crate::config_value;
use crate::http::ProbeHttp;

pub(crate) struct ProbeRoot {
    context_id: u32,
    config: String,
    ticks: u64,
    queue: Option<u32>,
}

impl ProbeRoot {
    pub fn new(context_id: u32) -> Self {
        Self { context_id, config: String::new(), ticks: 0, queue: None }
    }
}

impl Context for ProbeRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        info!(
            "root {} got call {} response: status={} body={}",
            self.context_id,
            token,
            status,
            String::from_utf8_lossy(&body)
        );
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        info!("vm_start config={}", String::from_utf8_lossy(&vm_config));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        self.config =
            String::from_utf8(self.get_plugin_configuration().unwrap_or_default()).unwrap_or_default();
        info!("configure: {}", self.config);
        if config_value(&self.config, "reject").is_some() {
            warn!("probe rejects this configuration on purpose");
            return false;
        }
        if config_value(&self.config, "panic_on_configure").is_some() {
            info!("about to panic in on_configure");
            panic!("probe panic in on_configure");
        }
        if let Some(ms) = config_value(&self.config, "tick_ms").and_then(|v| v.parse().ok()) {
            self.set_tick_period(Duration::from_millis(ms));
        }
        if let Some(name) = config_value(&self.config, "queue") {
            let id = self.register_shared_queue(name);
            info!("registered queue {name} as {id}");
            self.queue = Some(id);
        }
        if let Some(cluster) = config_value(&self.config, "root_call") {
            let headers = vec![(":method", "GET"), (":path", "/root"), (":authority", "root.test")];
            match self.dispatch_http_call(cluster, headers, None, vec![], Duration::from_secs(1)) {
                Ok(token) => info!("root dispatched call {token}"),
                Err(status) => warn!("root call failed: {status:?}"),
            }
        }
        for (kind, name) in [
            (MetricType::Counter, "probe_requests"),
            (MetricType::Gauge, "probe_gauge"),
            (MetricType::Histogram, "probe_latency"),
        ] {
            hostcalls::define_metric(kind, name).unwrap();
        }
        true
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        let now = self.get_current_time().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        info!("tick {} at {} ms", self.ticks, now);
        let id = hostcalls::define_metric(MetricType::Counter, "probe_ticks").unwrap();
        hostcalls::increment_metric(id, 1).unwrap();
        // A stream parked by `x-probe-op: wait-tick` is resumed from here, through the effective context.
        if let (Some(bytes), _) = self.get_shared_data("probe_waiting") {
            let waiting: u32 = String::from_utf8_lossy(&bytes).parse().unwrap_or(0);
            if waiting != 0 {
                self.set_shared_data("probe_waiting", Some(b"0"), None).unwrap();
                hostcalls::set_effective_context(waiting).unwrap();
                hostcalls::resume_http_request().unwrap();
                info!("tick resumed stream {waiting}");
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            info!("root {} dequeued from {}: {}", self.context_id, queue_id, String::from_utf8_lossy(&item));
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeHttp::new(context_id, self.queue)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

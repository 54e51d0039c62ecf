//! The probe's HTTP context: `x-probe-op` picks which host-function family a request exercises.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{debug, error, info, trace, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MetricType, Status};

pub(crate) struct ProbeHttp {
    id: u32,
    op: String,
    queue: Option<u32>,
}

impl ProbeHttp {
    pub fn new(id: u32, queue: Option<u32>) -> Self {
        Self { id, op: String::new(), queue }
    }

    fn header(&self, name: &str) -> String {
        self.get_http_request_header(name).unwrap_or_default()
    }

    fn reply(&self, status: u32, headers: Vec<(&str, &str)>, body: &str) -> Action {
        self.send_http_response(status, headers, Some(body.as_bytes()));
        Action::Pause
    }

    fn status_name(result: Result<(), Status>) -> String {
        match result {
            Ok(()) => "ok".into(),
            Err(Status::CasMismatch) => "cas-mismatch".into(),
            Err(other) => format!("{other:?}"),
        }
    }

    fn on_headers_op(&mut self) -> Action {
        match self.op.as_str() {
            "log" => {
                trace!("trace line");
                debug!("debug line");
                info!("info line");
                warn!("warn line");
                error!("error line");
                let level = hostcalls::get_log_level().unwrap();
                self.reply(200, vec![("x-log-level", &format!("{level:?}"))], "")
            }
            "time" => {
                let nanos =
                    self.get_current_time().duration_since(UNIX_EPOCH).unwrap().as_nanos().to_string();
                self.reply(200, vec![("x-time", &nanos)], "")
            }
            "headers" => {
                let count = self.get_http_request_headers().len().to_string();
                let read = self.header("x-read");
                self.add_http_request_header("x-added", "1");
                self.set_http_request_header("x-replace", Some("new"));
                self.set_http_request_header("x-remove", None);
                self.set_http_request_header("x-read-echo", Some(&read));
                self.set_http_request_header("x-count", Some(&count));
                Action::Continue
            }
            "local-reply" => {
                crate::raw::local_reply_with_details(418, "probe_teapot", b"short and stout");
                Action::Pause
            }
            "http-call" | "http-call-body" => {
                let cluster = self.get_http_request_header("x-cluster").unwrap_or_else(|| "auth".into());
                let timeout: u64 = self.header("x-timeout-ms").parse().unwrap_or(1000);
                let headers = vec![
                    (":method", "POST"),
                    (":path", "/check"),
                    (":authority", "auth.test"),
                    ("x-from", "probe"),
                ];
                match self.dispatch_http_call(
                    &cluster,
                    headers,
                    Some(b"who?"),
                    vec![],
                    Duration::from_millis(timeout),
                ) {
                    Ok(token) => {
                        info!("stream {} dispatched call {} to {}", self.id, token, cluster);
                        Action::Pause
                    }
                    Err(status) => self.reply(500, vec![], &format!("dispatch failed: {status:?}")),
                }
            }
            "grpc-call" => {
                let token = self.dispatch_grpc_call(
                    "rls",
                    "probe.Limits",
                    "Check",
                    vec![("x-md", b"1")],
                    Some(b"ping"),
                    Duration::from_secs(2),
                );
                info!("stream {} grpc call {:?}", self.id, token);
                Action::Pause
            }
            "grpc-stream" => {
                let token = self.open_grpc_stream("rls", "probe.Limits", "Watch", vec![]).unwrap();
                self.send_grpc_stream_message(token, Some(b"hello"), false);
                info!("stream {} opened grpc stream {}", self.id, token);
                Action::Pause
            }
            "shared-set" => {
                let result = self.set_shared_data(
                    &self.header("x-key"),
                    Some(self.header("x-value").as_bytes()),
                    None,
                );
                self.reply(200, vec![("x-result", &Self::status_name(result))], "")
            }
            "shared-get" => {
                let (value, cas) = self.get_shared_data(&self.header("x-key"));
                let value = String::from_utf8(value.unwrap_or_default()).unwrap();
                self.reply(200, vec![("x-value", &value), ("x-cas", &cas.unwrap_or(0).to_string())], "")
            }
            "shared-cas" => {
                let cas: u32 = self.header("x-cas").parse().unwrap_or(0);
                let result = self.set_shared_data(
                    &self.header("x-key"),
                    Some(self.header("x-value").as_bytes()),
                    Some(cas).filter(|c| *c != 0),
                );
                self.reply(200, vec![("x-result", &Self::status_name(result))], "")
            }
            "cas-stale" => {
                let key = self.header("x-key");
                let (_, stale) = self.get_shared_data(&key);
                let first = self.set_shared_data(&key, Some(b"first"), stale);
                let second = self.set_shared_data(&key, Some(b"second"), stale);
                self.reply(
                    200,
                    vec![("x-first", &Self::status_name(first)), ("x-second", &Self::status_name(second))],
                    "",
                )
            }
            "enqueue" => {
                let vm_id = self.header("x-vm-id");
                let id = self.resolve_shared_queue(&vm_id, &self.header("x-queue"));
                let result = match id {
                    Some(id) => Self::status_name(
                        self.enqueue_shared_queue(id, Some(self.header("x-value").as_bytes())),
                    ),
                    None => "not-found".into(),
                };
                self.reply(200, vec![("x-result", &result)], "")
            }
            "metrics" => {
                let counter = hostcalls::define_metric(MetricType::Counter, "probe_requests").unwrap();
                let gauge = hostcalls::define_metric(MetricType::Gauge, "probe_gauge").unwrap();
                let hist = hostcalls::define_metric(MetricType::Histogram, "probe_latency").unwrap();
                hostcalls::increment_metric(counter, 1).unwrap();
                hostcalls::record_metric(gauge, 42).unwrap();
                hostcalls::increment_metric(gauge, -2).unwrap();
                hostcalls::record_metric(hist, 7).unwrap();
                let negative = hostcalls::increment_metric(counter, -1);
                let value = hostcalls::get_metric(counter).unwrap().to_string();
                self.reply(200, vec![("x-counter", &value), ("x-negative", &format!("{negative:?}"))], "")
            }
            "property" => {
                let path = self.header("x-path");
                let value = self.get_property(path.split('.').collect());
                let text = match value {
                    Some(bytes) if bytes.len() == 8 && path == "response.code" => {
                        i64::from_le_bytes(bytes.try_into().unwrap()).to_string()
                    }
                    Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    None => "<none>".into(),
                };
                self.reply(200, vec![("x-value", &text)], "")
            }
            "set-property" => {
                let path = self.header("x-path");
                self.set_property(path.split('.').collect(), Some(self.header("x-value").as_bytes()));
                let back = self.get_property(path.split('.').collect()).unwrap_or_default();
                self.reply(200, vec![("x-value", &String::from_utf8_lossy(&back))], "")
            }
            "foreign" => {
                let result = self
                    .call_foreign_function(&self.header("x-name"), Some(self.header("x-args").as_bytes()));
                let text = match result {
                    Ok(bytes) => String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned(),
                    Err(status) => format!("{status:?}"),
                };
                self.reply(200, vec![("x-result", &text)], "")
            }
            "wasi" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos().to_string();
                let random: String = crate::raw::random_bytes(8).iter().map(|b| format!("{b:02x}")).collect();
                let env = std::env::var("PROBE_ENV").unwrap_or_default();
                self.reply(200, vec![("x-now", &now), ("x-random", &random), ("x-env", &env)], "")
            }
            "panic" => {
                info!("about to panic on purpose");
                panic!("probe panic requested");
            }
            "reset" => {
                self.reset_http_request();
                Action::Pause
            }
            "wait-tick" => {
                self.set_shared_data("probe_waiting", Some(self.id.to_string().as_bytes()), None).unwrap();
                Action::Pause
            }
            "pause" => Action::Pause,
            _ => Action::Continue,
        }
    }
}

impl Context for ProbeHttp {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        info!("stream {} got call {} response: headers={} body={}", self.id, token, num_headers, body_size);
        if num_headers == 0 {
            self.send_http_response(504, vec![("x-call", "timeout")], Some(b"upstream call timed out"));
            return;
        }
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        let body =
            String::from_utf8(self.get_http_call_response_body(0, body_size).unwrap_or_default()).unwrap();
        if status == "200" {
            self.set_http_request_header("x-auth", Some(&body));
            self.resume_http_request();
        } else {
            self.send_http_response(403, vec![("x-call-status", &status)], Some(body.as_bytes()));
        }
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        info!("stream {} grpc call {} response: status={} size={}", self.id, token, status, size);
        if status == 0 {
            let body = self.get_grpc_call_response_body(0, size).unwrap_or_default();
            self.set_http_request_header("x-grpc", Some(&String::from_utf8_lossy(&body)));
            self.resume_http_request();
        } else {
            let (code, message) = self.get_grpc_status();
            let text = format!("{code}:{}", message.unwrap_or_default());
            self.send_http_response(503, vec![("x-grpc-status", &text)], None);
        }
    }

    fn on_grpc_stream_initial_metadata(&mut self, token: u32, n: u32) {
        let md = self.get_grpc_stream_initial_metadata();
        info!("stream {} grpc {} initial metadata {}: {:?}", self.id, token, n, md);
    }

    fn on_grpc_stream_message(&mut self, token: u32, size: usize) {
        let message = self.get_grpc_stream_message(0, size).unwrap_or_default();
        info!("stream {} grpc {} message: {}", self.id, token, String::from_utf8_lossy(&message));
    }

    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, n: u32) {
        info!("stream {} grpc {} trailing metadata {}", self.id, token, n);
    }

    fn on_grpc_stream_close(&mut self, token: u32, status: u32) {
        info!("stream {} grpc {} closed with {}", self.id, token, status);
        self.resume_http_request();
    }
}

impl HttpContext for ProbeHttp {
    fn on_http_request_headers(&mut self, _n: usize, _end: bool) -> Action {
        self.op = self.header("x-probe-op");
        debug!("stream {} op={}", self.id, self.op);
        if let Some(queue) = self.queue.filter(|_| self.op == "enqueue-own") {
            self.enqueue_shared_queue(queue, Some(b"from-stream")).unwrap();
        }
        self.on_headers_op()
    }

    fn on_http_request_body(&mut self, size: usize, end: bool) -> Action {
        info!("stream {} request body size={} end={}", self.id, size, end);
        // Envoy keeps delivering body while the headers wait for a call; releasing it now would send the
        // request on before the call answered, so the probe buffers it, as a real filter must.
        if self.op == "http-call" {
            return Action::Pause;
        }
        if self.op != "body-buffer" {
            return Action::Continue;
        }
        if !end {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, size).unwrap_or_default();
        let upper = String::from_utf8_lossy(&body).to_uppercase();
        self.set_http_request_body(0, size, upper.as_bytes());
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        // Trailers end the body: what the filter buffered is whole now. Continue would release the request.
        let buffered = self.get_http_request_body(0, usize::MAX).unwrap_or_default();
        info!("stream {} request trailers {} after body size={}", self.id, n, buffered.len());
        if self.op == "http-call" {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _end: bool) -> Action {
        self.set_http_response_header("x-probe-response", Some("1"));
        if self.op == "resp-local" {
            self.send_http_response(502, vec![("x-replaced", "1")], Some(b"replaced by filter"));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end: bool) -> Action {
        info!("stream {} response body size={} end={}", self.id, size, end);
        if self.op != "resp-buffer" {
            return Action::Continue;
        }
        if !end {
            return Action::Pause;
        }
        let body = self.get_http_response_body(0, size).unwrap_or_default();
        let upper = String::from_utf8_lossy(&body).to_uppercase();
        self.set_http_response_body(0, size, upper.as_bytes());
        Action::Continue
    }

    fn on_log(&mut self) {
        info!("stream {} on_log", self.id);
    }
}

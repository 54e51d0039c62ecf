//! The filter's linear memory, exactly, in the wasmtime host: the soak's full pipeline (API key, request,
//! token and budget rules with prices, chat translated to Anthropic and passed to OpenAI, streaming and not,
//! the model list) for 32,000 exchanges, first one at a time, then with eight streams open at once and
//! advanced a step each in an order a seeded generator picks. After a 2,000-exchange warm-up the memory
//! (`tollgate_wasm_memory_bytes`, the gauge operators read) must not grow by a single 64 KiB page: a leak of
//! three bytes an exchange would add one. The providers' answers come from the harness's mocks, given what
//! the filter sent upstream.
//!
//! Envoy's soak (envoy_soak.rs) runs the same mix through a real Envoy, where how many streams overlap in one
//! VM is up to the kernel; here the overlap is fixed, so the figure is too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests fail loudly"
)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tollgate_harness::host::{Host, Request, Response, Vm};
use tollgate_harness::mock_llm::{MockLlm, ProviderKind};
use tollgate_harness::upstream::ReceivedRequest;

#[path = "soak_support/mix.rs"]
mod mix;

const WARM_UP: usize = 2_000;
const MEASURED: usize = 30_000;
const GAUGE: &str = "tollgate_wasm_memory_bytes";

/// Exchange `n` of the mix, and what a whole answer to it contains.
fn request(n: usize, bearer: &str) -> (Request, &'static str) {
    let mix::Exchange { chat, whole } = mix::exchange(n);
    let request = match chat {
        Some(body) => Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => Request::get("/v1/models"),
    };
    (request.header("authorization", bearer), whole)
}

/// One open exchange: its context, its request, the answer still to play and what the client must get.
struct Open {
    ctx: u32,
    request: Request,
    answer: Response,
    /// 0: the answer's head is next; k > 0: its body chunk k - 1.
    step: usize,
    whole: &'static str,
}

struct Mix {
    vm: Vm,
    bearer: String,
    openai: MockLlm,
    claude: MockLlm,
    rng: StdRng,
    sent: usize,
    done: usize,
}

impl Mix {
    fn new() -> Mix {
        let alice = mix::alice();
        let host = Host::load(tollgate_harness::tollgate_wasm()).unwrap();
        let vm = host.plugin(mix::config(&alice).to_string()).start().unwrap();
        Mix {
            vm,
            bearer: format!("Bearer {}", alice.key),
            openai: MockLlm::new(ProviderKind::OpenAi, mix::OPENAI_KEY),
            claude: MockLlm::new(ProviderKind::Anthropic, mix::ANTHROPIC_KEY),
            rng: StdRng::seed_from_u64(0x7011_6a7e),
            sent: 0,
            done: 0,
        }
    }

    /// Runs exchanges until `count` more have finished, with up to `width` open at once.
    fn run(&mut self, count: usize, width: usize) {
        let target = self.done + count;
        let mut open: Vec<Option<Open>> = (0..width).map(|_| None).collect();
        while self.done < target {
            let slot = self.rng.gen_range(0..width);
            match open[slot].take() {
                None if self.sent < target => open[slot] = self.start(),
                None => {}
                Some(exchange) => open[slot] = self.advance(exchange),
            }
        }
        self.vm.forget_finished();
        self.vm.clear_logs();
    }

    fn memory(&self) -> i64 {
        self.vm.metric(GAUGE).expect("the filter publishes its memory")
    }

    /// Sends exchange number `sent` whole; `None` when the filter answered it itself.
    fn start(&mut self) -> Option<Open> {
        let n = self.sent;
        self.sent += 1;
        let (request, whole) = request(n, &self.bearer);
        let mut stream = self.vm.stream(request.clone()).unwrap();
        stream.send_request().unwrap();
        if stream.is_complete() {
            let client = stream.exchange().downstream;
            assert!(client.status == 200 && client.body_str().contains(whole), "exchange {n}: {client:?}");
            self.done += 1;
            return None;
        }
        assert!(stream.reached_upstream(), "exchange {n} was held: {:?}", stream.exchange());
        let ctx = stream.context_id();
        let sent = stream.exchange().upstream.expect("the upstream request");
        let received = ReceivedRequest {
            method: sent.method,
            path: sent.path,
            headers: sent.headers,
            body: sent.body.as_bytes().to_vec(),
        };
        let mock = if received.path == "/v1/messages" { &self.claude } else { &self.openai };
        let answer = mock.answer(&received).to_host_response().expect("the mock answers");
        Some(Open { ctx, request, answer, step: 0, whole })
    }

    /// Plays the next piece of an exchange's answer; `None` once the exchange is over (and checked).
    fn advance(&mut self, mut open: Open) -> Option<Open> {
        let chunks = open.answer.body.0.len();
        let mut stream = self.vm.resume_stream(open.ctx, open.request.clone());
        if open.step == 0 {
            stream.send_response_headers(&open.answer, chunks == 0).unwrap();
        } else {
            let chunk = &open.answer.body.0[open.step - 1];
            stream.send_response_body(chunk.as_bytes(), open.step == chunks).unwrap();
        }
        if open.step < chunks {
            open.step += 1;
            return Some(open);
        }
        assert!(stream.is_complete(), "context {} still open after its answer", open.ctx);
        let client = stream.exchange().downstream;
        assert!(client.status == 200 && client.body_str().contains(open.whole), "{client:?}");
        self.done += 1;
        if self.done.is_multiple_of(1_000) {
            self.vm.forget_finished();
            self.vm.clear_logs();
        }
        None
    }
}

fn flat_over_the_mix(width: usize) {
    let mut mix = Mix::new();
    mix.run(WARM_UP, width);
    let warm = mix.memory();
    mix.run(MEASURED, width);
    let last = mix.memory();
    eprintln!("{width} open at once: {warm} bytes after {WARM_UP} exchanges, {last} after {}", mix.done);
    assert_eq!(mix.vm.metric("tollgate_requests_total"), Some((WARM_UP + MEASURED) as i64));
    assert_eq!(last, warm, "linear memory grew over {MEASURED} exchanges ({width} open at once)");
    assert!(last <= 4 << 20, "linear memory {last} bytes, over 4 MB");
}

#[test]
fn linear_memory_stays_flat_one_exchange_at_a_time() {
    flat_over_the_mix(1);
}

#[test]
fn linear_memory_stays_flat_with_eight_streams_interleaved() {
    flat_over_the_mix(8);
}

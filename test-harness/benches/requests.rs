//! `./build.sh bench`: the cost of one request through `dist/tollgate.wasm` in the wasmtime host, per
//! configuration, printed side by side with its ratio to a pass-through baseline measured in the same run.
//! Absolute numbers include the host's own work (building the exchange), so compare ratios across runs.

use std::hint::black_box;
use std::time::{Instant, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::json;
use tollgate_harness::host::{Host, Request, Response, Vm};

const BATCHES: usize = 7;
const BATCH: usize = 2_000;

/// Requests every row sends: the warm-up plus the measured batches.
const REQUESTS: usize = BATCH / 4 + BATCHES * BATCH;

struct Case {
    name: &'static str,
    config: String,
    /// Builds the next request. Anything costly (signing tokens) happens before the case is measured.
    request: Box<dyn FnMut() -> Request>,
}

fn case(name: &'static str, config: &str, request: impl FnMut() -> Request + 'static) -> Case {
    Case { name, config: config.to_string(), request: Box::new(request) }
}

fn cases(host: &Host) -> anyhow::Result<Vec<Case>> {
    let api_key = tollgate_auth::GeneratedKey::from_random(&[7; 32], &[1, 2, 3, 4]);
    let api_key_config =
        json!({"auth": {"consumers": [{"name": "alice", "api_keys": [api_key.config_entry()]}]}});
    // The same consumer, plus a request limit keyed by it that never refuses here: measures the key
    // derivation and one CAS round trip on the shared store per request.
    let limited_config = json!({
        "auth": {"consumers": [{"name": "alice", "api_keys": [api_key.config_entry()]}]},
        "ratelimit": {"rules": [
            {"name": "per-consumer", "key": ["consumer"], "requests": 1_000_000_000u64, "per": "second"}
        ]}
    });
    let limited_key = api_key.key.clone();
    let signer = Es256::new()?;
    let jwt_config = json!({"auth": {"jwt_providers": [{
        "name": "corp", "issuer": "https://idp.example", "audiences": ["tollgate"], "algorithms": ["ES256"],
        "keys": {"jwks": {"keys": [signer.jwk.clone()]}}, "claims_to_headers": {"email": "x-user-email"}
    }]}});
    let now = host.now().duration_since(UNIX_EPOCH)?.as_secs();
    let cached = format!("Bearer {}", signer.sign(now, 0)?);
    let mut fresh = (1..=REQUESTS as u64 + 1)
        .map(|n| signer.sign(now, n).map(|token| format!("Bearer {token}")))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter();
    Ok(vec![
        case("pass-through (empty config)", "{}", || Request::get("/v1/models")),
        case(
            "header edits both ways",
            r#"{"upstream_headers":{"set":{"x-tollgate":"on"},"remove":["x-internal"]},
                "response_headers":{"set":{"x-served-by":"tollgate"}}}"#,
            || Request::get("/v1/models").header("x-internal", "secret"),
        ),
        case(
            "local reply",
            r#"{"local_replies":[{"path_prefix":"/tollgate/ping","status":200,"body":{"pong":true}}]}"#,
            || Request::get("/tollgate/ping"),
        ),
        // SHA-256 of the presented key, one map lookup, credential stripping and the consumer header.
        case("API key", &api_key_config.to_string(), move || {
            Request::get("/v1/models").header("x-api-key", &api_key.key)
        }),
        case("API key + local request limit", &limited_config.to_string(), move || {
            Request::get("/v1/models").header("x-api-key", &limited_key)
        }),
        // The same token every time: after the first request, the per-worker token cache answers (a SHA-256
        // of the token and a map lookup), with no parsing or signature check.
        case("JWT (cached, ES256)", &jwt_config.to_string(), move || {
            Request::get("/v1/models").header("authorization", &cached)
        }),
        // A different token every request (signed before measuring), so each one is fully verified: parse,
        // ECDSA P-256 signature check, claims; plus a cache insert that evicts the oldest entry once full.
        case("JWT (uncached, ES256)", &jwt_config.to_string(), move || {
            let token = fresh.next().unwrap_or_default();
            Request::get("/v1/models").header("authorization", &token)
        }),
    ])
}

/// A fixed P-256 key signing ES256 tokens, and its public JWK.
struct Es256 {
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl Es256 {
    fn new() -> anyhow::Result<Self> {
        let private = p256::ecdsa::SigningKey::from_slice(&[7; 32])?;
        let point = private.verifying_key().to_encoded_point(false);
        let coordinate =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        Ok(Es256 {
            encoding: EncodingKey::from_ec_der(private.to_pkcs8_der()?.as_bytes()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": "k1",
                        "x": coordinate(point.x()), "y": coordinate(point.y())}),
        })
    }

    /// A token valid for an hour; `n` makes each one distinct.
    fn sign(&self, now: u64, n: u64) -> anyhow::Result<String> {
        let claims = json!({"iss": "https://idp.example", "aud": "tollgate", "sub": "alice",
                            "email": "alice@example.com", "iat": now, "exp": now + 3600, "jti": n});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

/// Median nanoseconds per request over several batches (the median resists a noisy shared machine).
fn measure(vm: &mut Vm, request: &mut dyn FnMut() -> Request) -> anyhow::Result<f64> {
    let response = Response::status(200).header("content-type", "application/json").body("{}");
    for _ in 0..BATCH / 4 {
        vm.send(request()).respond_with(response.clone()).run()?;
    }
    let mut per_request = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(vm.send(request()).respond_with(response.clone()).run()?);
        }
        per_request.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per_request.sort_by(f64::total_cmp);
    Ok(per_request.get(BATCHES / 2).copied().unwrap_or(f64::NAN))
}

fn main() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::tollgate_wasm())?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for mut case in cases(&host)? {
        let mut vm = host.plugin(case.config).start()?;
        // A request the filter refuses would measure the refusal, not the case.
        let status = vm.send((case.request)()).run()?.downstream.status;
        anyhow::ensure!(status == 200, "{}: the first request got {status}", case.name);
        rows.push((case.name, measure(&mut vm, &mut case.request)?));
    }
    let baseline = rows.first().map_or(f64::NAN, |(_, ns)| *ns);
    println!("\nTollgate in the wasmtime host: median of {BATCHES} batches x {BATCH} requests\n");
    println!("{:<34} {:>12} {:>10}", "case", "ns/request", "ratio");
    for (name, ns) in &rows {
        println!("{name:<34} {ns:>12.0} {:>9.2}x", ns / baseline);
    }
    println!("\n(measured in {:.1?}; ratio is against the first row, same run)", started.elapsed());
    Ok(())
}

//! End to end: authentication in the real `dist/tollgate.wasm` inside a real Envoy (`--concurrency 2`).
//! API keys and JWTs (keys from a JWKS that a second harness upstream serves through the Envoy cluster
//! `jwks`) are let through, refused with 401 or 403 as the client receives them, and never reach the
//! upstream. Needs Envoy and the built module; without them each test fails saying to run `./build.sh test`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tollgate_auth::GeneratedKey;
use tollgate_harness::envoy::{http_client, Answer, Envoy, StartError, LISTENER_NAME};
use tollgate_harness::upstream::{EchoUpstream, ReceivedRequest, Reply};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "tollgate";
const JWKS_PATH: &str = "/.well-known/jwks.json";
const WAIT: Duration = Duration::from_secs(5);
const CHALLENGE: &str = r#"Bearer realm="tollgate""#;
const CHALLENGE_INVALID: &str = r#"Bearer realm="tollgate", error="invalid_token""#;

/// `error.code` of an OpenAI-shaped error body, after checking the rest of its shape.
fn error_code(answer: &Answer) -> Result<String> {
    let (kind, code) = answer.openai_error()?;
    let expected = match answer.status {
        401 => "authentication_error",
        403 => "permission_error",
        _ => "api_error",
    };
    assert_eq!(kind, expected, "{answer:?}");
    Ok(code)
}

/// A GET on a fresh connection, which the kernel may hand to either worker.
fn get(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
    envoy.get(path, headers)
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

fn refused(upstream: &EchoUpstream, before: usize) {
    let received = upstream.received();
    assert_eq!(received.len(), before, "the upstream received a refused request: {:?}", received.last());
}

fn last_received(upstream: &EchoUpstream) -> Result<ReceivedRequest> {
    upstream.received().pop().context("the upstream received nothing")
}

fn wasm_counter(envoy: &Envoy, name: &str, expected: u64) -> Result<u64> {
    envoy.wait_for_counter(&format!("wasmcustom.{name}"), expected, WAIT)
}

fn api_key_config(alice: &GeneratedKey, bob: &GeneratedKey) -> Value {
    json!({"auth": {
        "consumers": [
            {"name": "alice", "group": "staff", "api_keys": [alice.config_entry()]},
            {"name": "bob", "api_keys": [bob.config_entry()]}
        ],
        "routes": [{"path_prefix": "/admin/", "groups": ["staff"]}]
    }})
}

#[test]
fn api_keys_allow_401_and_403_and_the_upstream_never_sees_the_key() -> Result<()> {
    let alice = GeneratedKey::from_random(&[1; 32], &[1; 4]);
    let bob = GeneratedKey::from_random(&[2; 32], &[2; 4]);
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder(api_key_config(&alice, &bob).to_string()).upstream(upstream.addr()).start()?;

    let auth = bearer(&alice.key);
    let ok = get(&envoy, "/v1/things", &[("authorization", &auth), ("x-tollgate-consumer", "mallory")])?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen = last_received(&upstream)?;
    assert_eq!(seen.path, "/v1/things");
    let consumers: Vec<&str> =
        seen.headers.iter().filter(|(n, _)| n == "x-tollgate-consumer").map(|(_, v)| v.as_str()).collect();
    assert_eq!(consumers, ["alice"], "the client's consumer header must be replaced, not joined");
    assert_eq!(seen.header("authorization"), None);

    let ok = get(&envoy, "/admin/users", &[("x-api-key", &alice.key)])?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen = last_received(&upstream)?;
    assert_eq!(seen.header("x-tollgate-consumer"), Some("alice"));
    assert_eq!(seen.header("x-api-key"), None);
    assert!(!seen.to_json().to_string().contains(&alice.key), "the key leaked upstream: {seen:?}");
    let allowed = upstream.received().len();
    assert_eq!(allowed, 2);

    let missing = get(&envoy, "/v1/things", &[("x-tollgate-consumer", "alice")])?;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(CHALLENGE));
    assert_eq!(error_code(&missing)?, "missing_credentials");

    let wrong = format!("{}x", alice.key);
    for headers in [[("authorization", bearer(&wrong))], [("x-api-key", wrong.clone())]] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let invalid = get(&envoy, "/v1/things", &headers)?;
        assert_eq!(invalid.status, 401, "{headers:?}");
        assert_eq!(invalid.header("www-authenticate"), Some(CHALLENGE_INVALID));
        assert_eq!(error_code(&invalid)?, "invalid_api_key");
        assert!(!invalid.body.contains(&wrong), "the error echoes the key: {}", invalid.body);
    }

    let forbidden = get(&envoy, "/admin/users", &[("authorization", &bearer(&bob.key))])?;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.header("www-authenticate"), None);
    assert_eq!(error_code(&forbidden)?, "consumer_not_allowed");
    refused(&upstream, allowed);

    assert_eq!(wasm_counter(&envoy, "tollgate_auth_allowed_total", 2)?, 2);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_missing_total", 1)?, 1);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_invalid_total", 2)?, 2);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_forbidden_total", 1)?, 1);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth.consumer.alice.allowed", 2)?, 2);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth.consumer.bob.forbidden", 1)?, 1);
    let stats = envoy.stats()?;
    assert_eq!(stats.wasm_custom("tollgate_auth_expired_total").unwrap_or(0), 0);
    assert_eq!(stats.wasm_custom("tollgate_requests_total"), Some(6));
    Ok(())
}

#[test]
fn a_bad_auth_config_stops_envoy_naming_the_json_path() -> Result<()> {
    let config = json!({"auth": {"consumers": [
        {"name": "alice", "api_keys": [{"id": "k-1", "sha256": "0123456789"}]}
    ]}});
    let log = match Envoy::builder(config.to_string()).start() {
        Ok(envoy) => bail!("Envoy started with a 10-hex-char sha256; log:\n{}", envoy.log()),
        Err(StartError::Exited { log, .. }) => log,
        Err(other) => return Err(other.into()),
    };
    let line = "configuration rejected: auth.consumers[0].api_keys[0].sha256: must be 64 hex characters";
    assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    Ok(())
}

/// A private key for signing test tokens and its public JWK.
struct SigningKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn es256(kid: &str) -> Result<SigningKey> {
    use p256::pkcs8::EncodePrivateKey as _;
    let private = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let point = private.verifying_key().to_encoded_point(false);
    let (x, y) = (point.x().context("no x")?, point.y().context("no y")?);
    Ok(SigningKey {
        alg: Algorithm::ES256,
        kid: kid.to_owned(),
        encoding: EncodingKey::from_ec_der(private.to_pkcs8_der()?.as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y), "kid": kid, "alg": "ES256", "use": "sig"}),
    })
}

fn rs256(kid: &str) -> Result<SigningKey> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
    let (n, e) = (private.n().to_bytes_be(), private.e().to_bytes_be());
    Ok(SigningKey {
        alg: Algorithm::RS256,
        kid: kid.to_owned(),
        encoding: EncodingKey::from_rsa_der(private.to_pkcs1_der()?.as_bytes()),
        jwk: json!({"kty": "RSA", "n": b64(&n), "e": b64(&e), "kid": kid, "alg": "RS256", "use": "sig"}),
    })
}

fn now_secs() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

/// Claims the provider accepts, for `sub`, valid for ten minutes.
fn claims(sub: &str) -> Result<Value> {
    let now = now_secs()?;
    Ok(
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "email": format!("{sub}@example.com"), "iat": now, "exp": now + 600}),
    )
}

fn mint(key: &SigningKey, claims: &Value) -> Result<String> {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
}

fn jwt_config() -> Value {
    json!({"auth": {
        "consumers": [{"name": "alice", "group": "staff"}],
        "jwt_providers": [{
            "name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256", "RS256"],
            // A 1 s minimum lets the rotation below refetch without a long wait.
            "keys": {"remote": {"cluster": "jwks", "authority": "idp.test", "path": JWKS_PATH,
                                "timeout_ms": 1000, "min_refresh_interval_s": 1}},
            "claims_to_headers": {"email": "x-user-email"}
        }],
        "routes": [{"path_prefix": "/admin/", "groups": ["staff"]}]
    }})
}

/// An Envoy whose JWT provider fetches keys from `jwks_server` through the cluster `jwks`.
fn start_with_jwks(upstream: &EchoUpstream, jwks_server: &EchoUpstream) -> Result<Envoy> {
    Ok(Envoy::builder(jwt_config().to_string())
        .upstream(upstream.addr())
        .cluster("jwks", jwks_server.addr())
        .start()?)
}

/// Waits for the root timer's first JWKS fetch (within a second of start-up). Until a first copy is stored,
/// requests on streams other than the one fetching are refused with 503 jwt_keys_unavailable: they do not
/// wait for a fetch in flight. Waiting keeps the tests deterministic.
fn wait_for_keys(envoy: &Envoy, jwks_server: &EchoUpstream) -> Result<()> {
    let fetched = wasm_counter(envoy, "tollgate_jwks_fetched_total", 1)?;
    assert!(fetched >= 1, "no JWKS stored; the JWKS server saw {:?}", jwks_server.received());
    Ok(())
}

#[test]
fn jwts_verified_with_a_remote_jwks_allow_401_and_403() -> Result<()> {
    let (ec, rsa, rotated_in) = (es256("ec-1")?, rs256("rsa-1")?, es256("ec-2")?);
    let rotated = Arc::new(AtomicBool::new(false));
    let jwks_server = {
        let before = json!({"keys": [ec.jwk, rsa.jwk]});
        let after = json!({"keys": [ec.jwk, rsa.jwk, rotated_in.jwk]});
        let rotated = Arc::clone(&rotated);
        EchoUpstream::start_with(move |request| match request.path.as_str() {
            JWKS_PATH if rotated.load(Ordering::SeqCst) => Reply::json(200, &after),
            JWKS_PATH => Reply::json(200, &before),
            _ => Reply::text(404, "no such document"),
        })?
    };
    let upstream = EchoUpstream::start()?;
    let envoy = start_with_jwks(&upstream, &jwks_server)?;
    wait_for_keys(&envoy, &jwks_server)?;

    // Several requests on fresh connections, from threads at once, so both workers verify tokens.
    let alice_es = mint(&ec, &claims("alice")?)?;
    let bob_rs = mint(&rsa, &claims("bob")?)?;
    let base = envoy.base_url();
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (base, token) = (base.clone(), if client % 2 == 0 { &alice_es } else { &bob_rs }.clone());
            std::thread::spawn(move || -> Result<Vec<(u16, String)>> {
                let mut answers = Vec::new();
                for n in 0..3 {
                    let mut response = http_client()
                        .get(format!("{base}/v1/c{client}/r{n}"))
                        .header("authorization", bearer(&token))
                        .call()?;
                    answers.push((response.status().as_u16(), response.body_mut().read_to_string()?));
                }
                Ok(answers)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??);
    }
    let not_ok: Vec<_> = answers.iter().filter(|(status, _)| *status != 200).collect();
    assert!(not_ok.is_empty(), "valid tokens refused: {not_ok:?}");
    assert_eq!(answers.len(), 24);
    let stats = envoy.stats()?;
    for worker in 0..2 {
        let connections = stats.get(&format!("listener.{LISTENER_NAME}.worker_{worker}.downstream_cx_total"));
        assert!(connections.unwrap_or(0) > 0, "worker {worker} took no connection");
    }
    let initial_fetches = jwks_server.received().len();
    // Workers share one copy; two workers claiming the first fetch at the same instant may both fetch.
    assert!((1..=2).contains(&initial_fetches), "JWKS fetched {initial_fetches} times for 24 requests");
    let stored = wasm_counter(&envoy, "tollgate_jwks_fetched_total", initial_fetches as u64)?;
    assert_eq!(stored, initial_fetches as u64);
    assert!(jwks_server.received().iter().all(|r| r.method == "GET" && r.path == JWKS_PATH));
    assert_eq!(jwks_server.received()[0].header("host"), Some("idp.test"));

    upstream.clear();
    let spoofed = [("x-tollgate-consumer", "mallory"), ("x-user-email", "mallory@example.com")];
    for (token, sub) in [(&alice_es, "alice"), (&bob_rs, "bob")] {
        let auth = bearer(token);
        let headers = [("authorization", auth.as_str()), spoofed[0], spoofed[1]];
        let answer = get(&envoy, "/v1/chat", &headers)?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let seen = last_received(&upstream)?;
        assert_eq!(seen.header("x-tollgate-consumer"), Some(sub));
        assert_eq!(seen.header("x-user-email"), Some(format!("{sub}@example.com").as_str()));
        assert_eq!(seen.headers.iter().filter(|(n, _)| n.starts_with("x-user-email")).count(), 1);
        assert_eq!(seen.header("authorization"), None);
    }
    let admin = get(&envoy, "/admin/users", &[("authorization", &bearer(&alice_es))])?;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let allowed = upstream.received().len();

    let mut expired_claims = claims("alice")?;
    expired_claims["exp"] = json!(now_secs()? - 3600);
    let mut wrong_audience = claims("alice")?;
    wrong_audience["aud"] = json!("someone-else");
    // Same kid and algorithm as the issuer's key, different private key.
    let impostor = es256("ec-1")?;
    let cases = [
        (mint(&ec, &expired_claims)?, "jwt_expired"),
        (mint(&rsa, &wrong_audience)?, "jwt_wrong_audience"),
        (mint(&impostor, &claims("alice")?)?, "jwt_bad_signature"),
    ];
    for (token, code) in &cases {
        let answer = get(&envoy, "/v1/chat", &[("authorization", &bearer(token))])?;
        assert_eq!(answer.status, 401, "{code}: {}", answer.body);
        assert_eq!(answer.header("www-authenticate"), Some(CHALLENGE_INVALID));
        assert_eq!(error_code(&answer)?, *code);
    }
    let missing = get(&envoy, "/v1/chat", &[])?;
    assert_eq!((missing.status, error_code(&missing)?.as_str()), (401, "missing_credentials"));
    let forbidden = get(&envoy, "/admin/users", &[("authorization", &bearer(&bob_rs))])?;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_eq!(forbidden.header("www-authenticate"), None);
    assert_eq!(error_code(&forbidden)?, "consumer_not_allowed");
    refused(&upstream, allowed);
    assert_eq!(jwks_server.received().len(), initial_fetches, "refusals made the filter refetch keys");

    // A key the cached JWKS lacks (rotated in at the issuer) makes the request wait for one refetch.
    std::thread::sleep(Duration::from_millis(1100));
    rotated.store(true, Ordering::SeqCst);
    let fresh =
        get(&envoy, "/v1/rotated", &[("authorization", &bearer(&mint(&rotated_in, &claims("carol")?)?))])?;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(last_received(&upstream)?.header("x-tollgate-consumer"), Some("carol"));
    assert_eq!(jwks_server.received().len(), initial_fetches + 1);

    let total_allowed = 24 + 3 + 1;
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_allowed_total", total_allowed)?, total_allowed);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_expired_total", 1)?, 1);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_invalid_total", 2)?, 2);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_missing_total", 1)?, 1);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_forbidden_total", 1)?, 1);
    // Alice is a declared consumer; JWT subjects that are not are counted per provider.
    assert_eq!(wasm_counter(&envoy, "tollgate_auth.consumer.alice.allowed", 14)?, 14);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth.jwt.corp.allowed", 14)?, 14);
    let fetched = wasm_counter(&envoy, "tollgate_jwks_fetched_total", initial_fetches as u64 + 1)?;
    assert_eq!(fetched, initial_fetches as u64 + 1);
    assert_eq!(envoy.stats()?.wasm_custom("tollgate_jwks_fetch_failures_total").unwrap_or(0), 0);
    Ok(())
}

#[test]
fn hostile_tokens_are_refused_and_envoy_keeps_serving() -> Result<()> {
    let ec = es256("ec-1")?;
    let jwks = json!({"keys": [ec.jwk]});
    let jwks_server = EchoUpstream::start_with(move |_| Reply::json(200, &jwks))?;
    let upstream = EchoUpstream::start()?;
    let envoy = start_with_jwks(&upstream, &jwks_server)?;
    wait_for_keys(&envoy, &jwks_server)?;
    let valid = bearer(&mint(&ec, &claims("alice")?)?);
    assert_eq!(get(&envoy, "/v1/chat", &[("authorization", &valid)])?.status, 200);
    let allowed = upstream.received().len();

    let payload = b64(claims("alice")?.to_string().as_bytes());
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let cases = [
        (format!("{none_header}.{payload}.{}", b64(b"sig")), "jwt_algorithm_not_allowed"),
        (format!("{none_header}.{payload}."), "jwt_algorithm_not_allowed"),
        (format!("{}.{}.{}", "A".repeat(16_000), "B".repeat(16_000), "C".repeat(100)), "jwt_too_large"),
    ];
    for (token, code) in &cases {
        let answer = get(&envoy, "/v1/chat", &[("authorization", &bearer(token))])?;
        assert_eq!(answer.status, 401, "{code}: {}", answer.body);
        assert_eq!(error_code(&answer)?, *code);
    }

    // Envoy's own limit on request headers (60 KiB) refuses this before the filter sees it.
    let huge = bearer(&"x".repeat(60 * 1024));
    let answer = get(&envoy, "/v1/chat", &[("authorization", &huge)])?;
    assert_eq!(answer.status, 431, "{}", answer.body);
    refused(&upstream, allowed);

    assert!(envoy.is_running());
    for _ in 0..4 {
        assert_eq!(get(&envoy, "/v1/chat", &[("authorization", &valid)])?.status, 200);
    }
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_invalid_total", 3)?, 3);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_allowed_total", 5)?, 5);
    assert_eq!(envoy.stats()?.wasm_custom("tollgate_requests_total"), Some(8));
    Ok(())
}

#[test]
fn an_unusable_jwks_endpoint_is_503_not_401_and_nothing_goes_upstream() -> Result<()> {
    let ec = es256("ec-1")?;
    let jwks_server = EchoUpstream::start_with(|_| Reply::text(500, "idp down"))?;
    let upstream = EchoUpstream::start()?;
    let envoy = start_with_jwks(&upstream, &jwks_server)?;
    let token = bearer(&mint(&ec, &claims("alice")?)?);

    let answer = get(&envoy, "/v1/chat", &[("authorization", &token)])?;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.header("www-authenticate"), None);
    assert_eq!(error_code(&answer)?, "jwt_keys_unavailable");
    refused(&upstream, 0);
    assert!(wasm_counter(&envoy, "tollgate_jwks_fetch_failures_total", 1)? >= 1);
    assert_eq!(wasm_counter(&envoy, "tollgate_auth_unavailable_total", 1)?, 1);
    assert!(!jwks_server.received().is_empty());
    Ok(())
}

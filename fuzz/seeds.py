#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the project's own examples: the shipped filter
configs (envoy/), the README's JSON, the AI fixtures (plugins/ai/tests/fixtures/) and tokens, keys and
requests made here in each target's input format (see the top of each fuzz_targets/*.rs). Standard library
only; run it again when those sources change (python3 fuzz/seeds.py). Files it did not write are kept."""

import base64
import glob
import hashlib
import hmac
import json
import os
import random
import re
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
# fuzz_targets/translate.rs: the provider is the first byte % 7, in this order.
PROVIDERS = ["openai", "azure", "anthropic", "gemini", "mistral", "openai_compatible", "bedrock"]
STATUSES = [200, 400, 401, 403, 404, 413, 422, 429, 500, 503, 529, 0, 99, 600]
# fuzz_targets/jwt.rs: its HS256 secret and ES256 private scalar.
HS_SECRET = b"tollgate-fuzz-hs256-secret-0123456789abcdef"
ES_SCALAR = int("1f5e2c419907a36b52de104f8c337a21640be8952d47c13e76580fba19d2836c", 16)


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


def compact(value):
    return json.dumps(value, separators=(",", ":")).encode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# P-256 arithmetic, enough to derive the public key and sign (seeds only: no constant time needed).
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


def ec_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def ec_mul(k, point):
    result = None
    while k:
        if k & 1:
            result = ec_add(result, point)
        point = ec_add(point, point)
        k >>= 1
    return result


ES_PUBLIC = ec_mul(ES_SCALAR, G)


def es256_sign(message):
    z = int.from_bytes(hashlib.sha256(message).digest(), "big")
    k = int.from_bytes(hashlib.sha256(b"nonce" + message).digest(), "big") % N
    r = ec_mul(k, G)[0] % N
    s = pow(k, -1, N) * (z + r * ES_SCALAR) % N
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def token(header, claims, sign):
    head = b64url(compact(header)) + "." + b64url(compact(claims))
    return head + "." + b64url(sign(head.encode()))


def hs256(message):
    return hmac.new(HS_SECRET, message, hashlib.sha256).digest()


def es_jwk(kid="es-1"):
    x, y = ES_PUBLIC
    return {"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": b64url(x.to_bytes(32, "big")), "y": b64url(y.to_bytes(32, "big"))}


def es_pem():
    x, y = ES_PUBLIC
    der = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04"
    der += x.to_bytes(32, "big") + y.to_bytes(32, "big")
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def probable_prime(rng, bits):
    while True:
        candidate = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        if all(pow(rng.randrange(2, candidate - 1), candidate - 1, candidate) == 1 for _ in range(8)):
            return candidate


def rsa_jwk():
    rng = random.Random(2048)
    n = probable_prime(rng, 1024) * probable_prime(rng, 1024)
    return {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "n": b64url(n.to_bytes(256, "big")), "e": "AQAB"}


def config_seeds():
    for path in sorted(glob.glob(os.path.join(ROOT, "envoy", "*.json"))):
        write("config", "envoy-" + os.path.basename(path), open(path, "rb").read())
    # The JSON inside the Envoy and Istio manifests (`value: |` blocks), as Envoy hands it over.
    for path in sorted(glob.glob(os.path.join(ROOT, "envoy", "**", "*.yaml"), recursive=True)):
        text = open(path).read()
        for i, match in enumerate(re.finditer(r"\n( *)value: \|\n((?:\1  .*\n|\s*\n)+)", text)):
            block = "\n".join(line[len(match.group(1)) + 2:] for line in match.group(2).splitlines())
            if block.lstrip().startswith("{"):
                name = os.path.relpath(path, ROOT).replace("/", "-")
                write("config", f"{name}-{i}.json", block)
    readme = open(os.path.join(ROOT, "README.md")).read()
    for i, block in enumerate(re.findall(r"```json\n(.*?)```", readme, re.S)):
        if block.lstrip().startswith("{"):
            write("config", f"readme-{i}.json", block)
    for provider in PROVIDERS:
        folder = os.path.join(ROOT, "plugins/ai/tests/fixtures", provider)
        ai = json.load(open(os.path.join(folder, "provider.json")))
        write("config", f"ai-{provider}.json", compact({"ai": ai}))
    write("config", "empty.json", b"")
    write("config", "broken-utf8.json", b'{"upstream_headers":{"set":{"x-a":"\xff"}}}')


def header_map(pairs):
    """A header map as proxy-wasm serialises it (fuzz_targets/api_key.rs, even first byte)."""
    pairs = [(n.encode(), v.encode()) for n, v in pairs]
    out = struct.pack("<I", len(pairs))
    for name, value in pairs:
        out += struct.pack("<II", len(name), len(value))
    for name, value in pairs:
        out += name + b"\0" + value + b"\0"
    return out


def api_key_seeds():
    requests = {
        "bearer": [(":method", "POST"), (":path", "/v1/chat/completions"), (":authority", "api.example"),
                   ("authorization", "Bearer tg_alice_live"), ("content-type", "application/json")],
        "x-api-key-scoped": [(":method", "POST"), (":path", "/v1/chat/completions?x=1"),
                             ("x-api-key", "tg_bob_scoped"), ("x-consumer", "spoofed")],
        "query": [(":method", "GET"), (":path", "/v1/models?api_key=tg_carol_reader&b=%41")],
        "cookie": [(":method", "GET"), (":path", "/keys-only/x"), ("cookie", "a=1; tg_key=tg_alice_live; z")],
        "expired": [(":method", "GET"), (":path", "/v1/models"), ("x-api-key", "tg_alice_expired")],
        "admin-xff": [(":method", "GET"), (":path", "/admin/users"), ("authorization", "Bearer tg_alice_live"),
                      ("x-forwarded-for", "203.0.113.9, 10.1.2.3"), ("x-forwarded-for", "192.0.2.1")],
        "admin-source": [(":method", "GET"), (":path", "/admin/users"), ("x-api-key", "tg_alice_live"),
                         ("x-fuzz-source", "[2001:db8::7]:443")],
        "jwt-shaped": [(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer aaa.bbb.ccc")],
        "health": [(":method", "GET"), (":path", "/health"), ("x-consumer", "spoofed")],
    }
    for i, (name, pairs) in enumerate(requests.items()):
        # Even first bytes; 2 reads the address from the peer instead of X-Forwarded-For.
        mode = 2 if name == "admin-source" else 0
        write("api_key", f"map-{name}", bytes([mode]) + header_map(pairs))
    write("api_key", "map-malformed", b"\x00\x05\x00\x00\x00\x01\x00")
    rng = random.Random(7)
    for i in range(4):
        write("api_key", f"structured-{i}", bytes([1 + 2 * (i % 2)]) + bytes(rng.getrandbits(8) for _ in range(96)))


def jwt_seeds():
    now = 1_700_000_000
    hs_claims = {"iss": "https://hs.example", "aud": ["api", "x"], "sub": "alice", "email": "a@example.com",
                 "groups": ["staff", "ops"], "exp": now + 600, "nbf": now - 10, "iat": now}
    es_claims = {"iss": "https://es.example", "client_id": "svc-1", "exp": now + 600}
    write("jwt", "raw-hs256", b"\x00" + token({"alg": "HS256", "typ": "JWT"}, hs_claims, hs256).encode())
    write("jwt", "raw-es256", b"\x00" + token({"alg": "ES256", "kid": "es-1"}, es_claims, es256_sign).encode())
    write("jwt", "raw-alg-none", b"\x00" + token({"alg": "none"}, hs_claims, lambda m: b"").encode() + b"x")
    write("jwt", "raw-other-issuer", b"\x00" + token({"alg": "HS384"}, {"iss": "https://other.example",
                                                                         "sub": "bob", "exp": now + 5},
                                                      lambda m: b"\0" * 48).encode())
    signed = {
        "hs-valid": (1, {"alg": "HS256", "typ": "JWT"}, hs_claims),
        "hs-expired": (1, {"alg": "HS256"}, dict(hs_claims, exp=now - 3600)),
        "hs-crit": (1, {"alg": "HS256", "crit": ["x"]}, hs_claims),
        "hs-numbers": (1, {"alg": "HS256", "kid": "a:b"}, dict(hs_claims, exp=1e300, nbf=-1, aud=7, sub="")),
        "es-valid": (2, {"alg": "ES256", "kid": "es-1"}, es_claims),
        "es-no-kid": (2, {"alg": "ES256"}, dict(es_claims, client_id=["x"])),
    }
    for name, (mode, header, claims) in signed.items():
        write("jwt", name, bytes([mode]) + compact(header) + b"\0" + compact(claims))
    jwks = {
        "jwks-es": {"keys": [es_jwk()]},
        "jwks-mixed": {"keys": [rsa_jwk(), es_jwk("other"), {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\1" * 32)},
                                {"kty": "oct", "k": b64url(HS_SECRET)}, {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]},
        "jwks-rsa": {"keys": [rsa_jwk()]},
    }
    for name, doc in jwks.items():
        write("jwt", name, bytes([3]) + compact(doc))
    write("jwt", "pem-es256", bytes([4]) + es_pem().encode())


def fixtures():
    for provider in PROVIDERS:
        for path in sorted(glob.glob(os.path.join(ROOT, "plugins/ai/tests/fixtures", provider, "*.json"))):
            name = os.path.basename(path)[:-5]
            if name != "provider":
                yield provider, name, json.load(open(path))


def sse_seeds():
    seen = set()
    for provider, name, fixture in fixtures():
        sse = fixture.get("upstream_response", {}).get("sse")
        if sse and sse not in seen:
            seen.add(sse)
            # The default bound, then piece lengths 7, 1, 30.
            write("sse", f"{provider}-{name}", b"\x00\x03\x07\x01\x1e" + sse.encode())
    write("sse", "line-ends", b"\x00\x02\x01\x02\xef\xbb\xbfdata: a\r\ndata: b\r\rid: 1\nevent: x\n\n: c\n\ndata\n\n")
    write("sse", "small-bound", b"\x02\x00event: message\ndata: 0123456789abcdef\n\ndata: end")


def event_frame(headers, payload):
    """One AWS event-stream frame with string headers (fuzz_targets/bedrock_stream.rs)."""
    head = b""
    for name, value in headers:
        head += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_stream(frames):
    """A fixture's `event_stream` frames encoded as Bedrock sends them (see bedrock/conformance.rs)."""
    out = b""
    for frame in frames:
        payload = compact(frame["data"])
        if "event" in frame:
            out += event_frame([(":event-type", frame["event"]), (":content-type", "application/json"),
                                (":message-type", "event")], payload)
        else:
            out += event_frame([(":exception-type", frame["exception"]), (":content-type", "application/json"),
                                (":message-type", "exception")], payload)
        if frame.get("truncate"):
            out = out[:-frame["truncate"]]
    return out


def bedrock_stream_seeds():
    for provider, name, fixture in fixtures():
        frames = fixture.get("upstream_response", {}).get("event_stream")
        if frames:
            # The default bound, then piece lengths 7, 1, 30.
            write("bedrock_stream", f"{name}", b"\x00\x03\x07\x01\x1e" + event_stream(frames))
    start = event_frame([(":event-type", "messageStart"), (":message-type", "event")], b'{"role":"assistant"}')
    delta = event_frame([(":event-type", "contentBlockDelta"), (":message-type", "event")],
                        b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}')
    stop = event_frame([(":event-type", "messageStop"), (":message-type", "event")], b'{"stopReason":"end_turn"}')
    meta = event_frame([(":event-type", "metadata"), (":message-type", "event")], b'{"usage":{"inputTokens":1}}')
    # One byte at a time; a small bound (16 * 4 bytes) that the delta frame exceeds; bytes after metadata.
    write("bedrock_stream", "one-byte-pieces", b"\x00\x00" + start + delta + stop + meta)
    write("bedrock_stream", "small-bound", b"\x04\x01\x05" + start + delta + stop + meta)
    write("bedrock_stream", "after-metadata", b"\x00\x02\x03\x40" + start + stop + meta + b"\x00\x00\x00\x20junk")
    # Every header type the format has (they are skipped), and an error-type frame.
    typed = (b"\x01a\x00" + b"\x01b\x01" + b"\x01c\x02\x07" + b"\x01d\x03\x00\x07" + b"\x01e\x04" + b"\x00" * 4
             + b"\x01f\x05" + b"\x00" * 8 + b"\x01g\x06\x00\x02ab" + b"\x01h\x08" + b"\x00" * 8 + b"\x01i\x09" + b"\x11" * 16
             + b"\x0b:event-type\x07\x00\x0cmessageStart" + b"\x0d:message-type\x07\x00\x05event")
    payload = b'{"role":"assistant"}'
    prelude = struct.pack(">II", 12 + len(typed) + len(payload) + 4, len(typed))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + typed + payload
    write("bedrock_stream", "header-types", b"\x00\x01\x09" + message + struct.pack(">I", zlib.crc32(message)))
    error = event_frame([(":message-type", "error"), (":error-code", "InternalFailure"), (":error-message", "oops")], b"")
    write("bedrock_stream", "error-frame", b"\x00\x01\x11" + start + error)


def translate_seeds():
    for provider, name, fixture in fixtures():
        kind = PROVIDERS.index(provider)
        providers = len(PROVIDERS)
        embeddings = fixture.get("path") == "/v1/embeddings"
        request = fixture.get("request")
        if request is not None:
            direction = 4 if embeddings else 0
            write("translate", f"{provider}-{name}-request", bytes([kind + providers * direction]) + compact(request))
        response = fixture.get("upstream_response", {})
        status = response.get("status", 200)
        body = response.get("body")
        if isinstance(body, (dict, list)):
            body = compact(body)
        elif isinstance(body, str):
            body = body.encode()
        if response.get("sse"):
            write("translate", f"{provider}-{name}-stream", bytes([kind + providers * 2, 42]) + response["sse"].encode())
        elif response.get("event_stream"):
            write("translate", f"{provider}-{name}-stream",
                  bytes([kind + providers * 2, 42]) + event_stream(response["event_stream"]))
        elif body is not None and status >= 300:
            code = STATUSES.index(status) if status in STATUSES else 0
            write("translate", f"{provider}-{name}-error", bytes([kind + providers * 3, code]) + body)
        elif body is not None and embeddings:
            base64_wanted = (request or {}).get("encoding_format") == "base64"
            write("translate", f"{provider}-{name}-response", bytes([kind + providers * 5, 2 if base64_wanted else 0]) + body)
        elif body is not None:
            write("translate", f"{provider}-{name}-response", bytes([kind + providers * 1]) + body)


def prompt_seeds():
    summarizer = {
        "path": "/summarize", "model": "gpt-4o-mini", "description": "Summarize a text", "temperature": 0.2,
        "max_tokens": 300,
        "variables": {
            "text": {"type": "string", "required": True, "min_length": 1, "max_length": 2000},
            "style": {"type": "enum", "values": ["bullets", "prose"], "default": "prose"},
            "words": {"type": "integer", "minimum": 10, "maximum": 500},
            "tags": {"type": "array", "items": "string", "max_length": 3},
            "strict": {"type": "boolean"}, "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "versions": [
            {"name": "v1", "weight": 3, "messages": [
                {"role": "system", "content": "You summarize texts as {{style}}."},
                {"role": "user", "content": "Summarize in about {{ words }} words ({{tags}}, {{strict}}, {{ratio}}):\n{{text}}"}]},
            {"name": "v2", "messages": [{"role": "user", "content": "{{text}}"}]},
        ],
    }
    extractor = {
        "path": "/extract", "method": "PUT", "model": "claude-sonnet",
        "variables": {"text": {"type": "string", "required": True}},
        "versions": [{"name": "a", "messages": [{"role": "user", "content": "Extract from: {{text}}"}]}],
        "output": {"mode": "json", "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 40},
                "age": {"type": ["integer", "null"], "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
                "kind": {"enum": ["a", "b", 1]}, "nested": {"type": "object", "properties": {"x": {"const": 1}}},
            },
            "required": ["name", "age", "tags"], "additionalProperties": False,
        }},
    }
    section = {"endpoints": [summarizer, extractor], "openapi": {"title": "Prompts", "version": "1.2.0"},
               "decorators": [{"path_prefix": "/summarize", "prepend": [{"role": "system", "content": "Be brief."}],
                               "append": [{"role": "user", "content": "Thanks."}]}]}
    body = {"text": "Tollgate is a proxy-wasm filter.", "words": 50, "tags": ["a", "b"], "strict": True, "ratio": 0.5}

    def completion(content):
        return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}

    answers = {
        "text": completion("A short summary."),
        "json": completion('```json\n{"name": "Ada", "age": 36, "tags": ["x"], "kind": "a", "nested": {"x": 1}}\n```'),
        "mismatch": completion('{"name": "", "age": -1, "tags": [1, 1, 1, 1], "extra": true}'),
        "no-text": {"choices": [{"message": {"content": None}, "finish_reason": "length"}]},
    }
    for name, answer in answers.items():
        write("prompt", f"section-{name}", b"\x00" + compact(section) + b"\0" + compact(body) + b"\0" + compact(answer))
    write("prompt", "section-bad-body", b"\x00" + compact(section) + b"\0" + b'{"text": 5, "words": 9999, "x": 1}')
    write("prompt", "section-bad-template", b"\x00" + compact({"endpoints": [dict(summarizer, versions=[
        {"name": "v1", "messages": [{"role": "user", "content": "{{nmae}} {{ text"}]}])]}))
    rng = random.Random(11)
    for i in range(4):
        write("prompt", f"structured-{i}", bytes([1]) + bytes(rng.getrandbits(8) for _ in range(160)))


def messages_seeds():
    """Anthropic-ingress requests (byte 0 even) and the OpenAI streams adapters write (byte 0 odd)."""
    ingress = os.path.join(ROOT, "plugins/ai/tests/fixtures/anthropic_ingress")
    for path in sorted(glob.glob(os.path.join(ingress, "*.json"))):
        name = os.path.basename(path)[:-5]
        if name != "provider":
            write("messages", f"request-{name}", b"\x00" + compact(json.load(open(path))["request"]))
    for provider, name, case in fixtures():
        sse = case.get("upstream_response", {}).get("sse")
        if sse and "chat.completion.chunk" in sse:
            write("messages", f"stream-{provider}-{name}", b"\x03" + sse.encode())
        body = case.get("expected_client", {}).get("body")
        if isinstance(body, dict) and body.get("object") == "chat.completion":
            write("messages", f"completion-{provider}-{name}", b"\x01" + compact(body))


def varint(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def callouts_seeds():
    """Rate limit service answers (byte 0 even) and a prompt endpoint's provider answers (odd); byte 1: 200."""
    # envoy.service.ratelimit.v3.RateLimitResponse: overall_code (1), statuses (2: code, current_limit
    # {requests_per_unit, unit}, limit_remaining, duration_until_reset {seconds}).
    def status(code, remaining):
        limit = varint(1 << 3) + varint(5) + varint(2 << 3) + varint(2)
        return varint(1 << 3) + varint(code) + field(2, limit) + varint(3 << 3) + varint(remaining) + field(4, varint(1 << 3) + varint(30))
    write("callouts", "rls-ok", b"\x00\x01" + varint(1 << 3) + varint(1) + field(2, status(1, 4)))
    write("callouts", "rls-over", b"\x00\x01" + varint(1 << 3) + varint(2) + field(2, status(2, 0)) + field(2, status(1, 3)))
    write("callouts", "rls-empty", b"\x00\x01")
    write("callouts", "rls-failed", b"\x00\x00")
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"label":"positive"}'},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}}
    write("callouts", "prompt-ok", b"\x01\x01" + compact(answer))
    answer["choices"][0]["message"]["content"] = "not json"
    write("callouts", "prompt-bad-output", b"\x01\x01" + compact(answer))
    write("callouts", "prompt-error", b"\x01\x04" + compact({"error": {"message": "overloaded", "type": "server_error"}}))


if __name__ == "__main__":
    config_seeds()
    api_key_seeds()
    jwt_seeds()
    sse_seeds()
    bedrock_stream_seeds()
    translate_seeds()
    messages_seeds()
    callouts_seeds()
    prompt_seeds()

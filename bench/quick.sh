#!/usr/bin/env bash
# One cyberid measurement (no reference provider): a fresh SQLite platform pinned to core 0,
# `cyberid bench MODE` pinned to core 1. For before/after comparisons while profiling.
#   bench/quick.sh [MODE=login] [LEVEL=1] [N=5000] [C=32] [WARMUP=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-login}; LEVEL=${2:-1}; N=${3:-5000}; C=${4:-32}; WARMUP=${5:-2000}
WORK=$(mktemp -d /tmp/cyberid-quick-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export CYBERID_LOG=warn
cargo build --release -q -p cyberid
BIN=target/release/cyberid
$BIN registry generate --count 20000 --seed 7 --out "$WORK/registry.tsv" --json >/dev/null
$BIN registry import "$WORK/registry.tsv" --data "$WORK/data" --json >/dev/null
taskset -c 0 $BIN serve --data "$WORK/data" --listen 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
taskset -c 1 $BIN bench "$MODE" --server "$(awk '{print $NF}' "$WORK/serve.out")" --data "$WORK/data" \
  --registry "$WORK/registry.tsv" --level "$LEVEL" --count "$N" --warmup "$WARMUP" --concurrency "$C" \
  --server-pid "$PID" --json

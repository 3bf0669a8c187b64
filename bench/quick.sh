#!/usr/bin/env bash
# One cyberid measurement (no reference provider): a fresh platform (embedded SQLite, or
# PostgreSQL with BENCH_DATABASE_URL) pinned to core 0, `cyberid bench MODE` pinned to core 1.
# For before/after comparisons while profiling.
#   bench/quick.sh [MODE=login] [LEVEL=1] [N=5000] [C=32] [WARMUP=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-login}; LEVEL=${2:-1}; N=${3:-5000}; C=${4:-32}; WARMUP=${5:-2000}
# Env: BENCH_DATABASE_URL (a PostgreSQL database; the run uses a fresh schema in it, dropped
# afterwards). Without it, the embedded SQLite store. BIN (a cyberid binary to measure
# instead of building this checkout: for A/B runs of two builds back to back).
WORK=$(mktemp -d /tmp/cyberid-quick-XXXXXX)
SCHEMA="quick_$$"
STORE=()
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  psql "$BENCH_DATABASE_URL" -qc "CREATE SCHEMA $SCHEMA"
  STORE=(--database-url "$BENCH_DATABASE_URL?options=-csearch_path%3D$SCHEMA")
fi
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  [ -n "${BENCH_DATABASE_URL:-}" ] && psql "$BENCH_DATABASE_URL" -qc "DROP SCHEMA $SCHEMA CASCADE" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
export CYBERID_LOG=warn PGOPTIONS="--client-min-messages=warning"
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p cyberid
  BIN=target/release/cyberid
fi
$BIN registry generate --count 20000 --seed 7 --out "$WORK/registry.tsv" --json >/dev/null
$BIN registry import "$WORK/registry.tsv" --data "$WORK/data" "${STORE[@]}" --json >/dev/null
taskset -c 0 $BIN serve --data "$WORK/data" "${STORE[@]}" --listen 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
taskset -c 1 $BIN bench "$MODE" --server "$(awk '{print $NF}' "$WORK/serve.out")" --data "$WORK/data" "${STORE[@]}" \
  --registry "$WORK/registry.tsv" --level "$LEVEL" --count "$N" --warmup "$WARMUP" --concurrency "$C" \
  --server-pid "$PID" --json

#!/usr/bin/env bash
# One cyberid measurement (no reference provider): a fresh platform (embedded SQLite, or
# PostgreSQL with BENCH_DATABASE_URL) pinned to core 0, `cyberid bench MODE` pinned to core 1.
# For before/after comparisons while profiling.
#   bench/quick.sh [MODE=login] [LEVEL=1] [N=5000] [C=32] [WARMUP=2000]
# Env: BENCH_DATABASE_URL (a PostgreSQL database; the run uses a fresh schema in it, dropped
# afterwards). Without it, the embedded SQLite store. BIN (a cyberid binary to measure
# instead of building this checkout: for A/B runs of two builds back to back). EXTRA (more
# arguments for `cyberid bench`, e.g. "--hold-ms 2000").
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MODE=${1:-login}; LEVEL=${2:-1}; N=${3:-5000}; C=${4:-32}; WARMUP=${5:-2000}
bench_setup quick
STORE=()
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  fresh_schema "$BENCH_DATABASE_URL" "quick_$$"
  STORE=(--database-url "$PG_URL")
fi
build_release
"$BIN" registry generate --count 20000 --seed 7 --out "$WORK/registry.tsv" --json >/dev/null
"$BIN" registry import "$WORK/registry.tsv" --data "$WORK/data" "${STORE[@]}" --json >/dev/null
start_server 0 --data "$WORK/data" "${STORE[@]}"
taskset -c 1 "$BIN" bench "$MODE" --server "$URL" --data "$WORK/data" "${STORE[@]}" \
  --registry "$WORK/registry.tsv" --level "$LEVEL" --count "$N" --warmup "$WARMUP" --concurrency "$C" \
  --server-pid "$SERVE_PID" --json ${EXTRA:-}

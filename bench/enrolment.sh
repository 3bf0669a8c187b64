#!/usr/bin/env bash
# Enrolment and registry-import figures, as recorded in BENCHMARKS.md.
#
#   bench/enrolment.sh [RECORDS] [ENROLMENTS] [RUNS]
#
# Generates a synthetic registry of RECORDS people (default 1,000,000), imports it into a
# fresh SQLite data directory and a fresh PostgreSQL schema (peak memory measured with
# /usr/bin/time), then runs `cyberid bench enrol` RUNS times (default 3) with ENROLMENTS
# enrolments each (default 2,000) at 32 in flight against each store. Prints medians.
# Needs PostgreSQL on 127.0.0.1:5432 (override with BENCH_DATABASE_URL).
# Env: BIN (a cyberid binary to measure instead of building this checkout), TMPDIR (where
# the scratch data directory goes; its file system decides what a durable commit costs).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

RECORDS=${1:-1000000}
ENROLMENTS=${2:-2000}
RUNS=${3:-3}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
bench_setup enrolment
build_release

echo "== registry: $RECORDS records"
"$BIN" registry generate --count "$RECORDS" --seed 1 --out "$WORK/registry.tsv" --json
fresh_schema "$DB" "bench_$$"

for store in sqlite postgres; do
  args=(--data "$WORK/data-$store")
  [ "$store" = postgres ] && args+=(--database-url "$PG_URL")
  /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" registry import "$WORK/registry.tsv" "${args[@]}" --json > "$WORK/import.json"
  echo "import[$store]: $(get "$WORK/import.json" "['records_per_second']" | xargs printf '%.0f') records/s," \
       "peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB"
done

for store in sqlite postgres; do
  args=(--data "$WORK/data-$store")
  [ "$store" = postgres ] && args+=(--database-url "$PG_URL")
  start_server "" "${args[@]}"
  : > "$WORK/rates"; : > "$WORK/p99"; : > "$WORK/cpu"
  for run in $(seq "$RUNS"); do
    "$BIN" bench enrol --server "$URL" --registry "$WORK/registry.tsv" --count "$ENROLMENTS" \
      --concurrency 32 --skip $(( (run - 1) * ENROLMENTS )) --server-pid "$SERVE_PID" --json > "$WORK/run.json"
    get "$WORK/run.json" "['per_second']" >> "$WORK/rates"
    get "$WORK/run.json" "['latency_ms']['p99']" >> "$WORK/p99"
    get "$WORK/run.json" "['server_cpu_ms_per_op']" >> "$WORK/cpu"
    echo "  run $run [$store]: $(cat "$WORK/run.json")"
  done
  printf 'enrol[%s]: median %.0f enrolments/s, p99 %.1f ms, server CPU %.2f ms/enrolment (%d runs of %d)\n' \
    "$store" "$(median < "$WORK/rates")" "$(median < "$WORK/p99")" "$(median < "$WORK/cpu")" "$RUNS" "$ENROLMENTS"
  stop_server
done

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
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${1:-1000000}
ENROLMENTS=${2:-2000}
RUNS=${3:-3}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export PGOPTIONS="--client-min-messages=warning"
WORK=$(mktemp -d /tmp/cyberid-bench-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release -q -p cyberid
BIN=target/release/cyberid
export CYBERID_LOG=warn

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

echo "== registry: $RECORDS records"
$BIN registry generate --count "$RECORDS" --seed 1 --out "$WORK/registry.tsv" --json
SCHEMA="bench_$$"
psql "$DB" -qc "CREATE SCHEMA $SCHEMA"
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$DB" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE"; rm -rf "$WORK"' EXIT
PG_URL="$DB?options=-csearch_path%3D$SCHEMA"

for store in sqlite postgres; do
  args=(--data "$WORK/data-$store")
  [ "$store" = postgres ] && args+=(--database-url "$PG_URL")
  /usr/bin/time -f "%M" -o "$WORK/rss" $BIN registry import "$WORK/registry.tsv" "${args[@]}" --json > "$WORK/import.json"
  echo "import[$store]: $(field "['records_per_second']" < "$WORK/import.json" | xargs printf '%.0f') records/s," \
       "peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB"
done

for store in sqlite postgres; do
  args=(--data "$WORK/data-$store" --listen 127.0.0.1:0)
  [ "$store" = postgres ] && args+=(--database-url "$PG_URL")
  $BIN serve "${args[@]}" > "$WORK/serve.out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
  url=$(awk '{print $NF}' "$WORK/serve.out")
  : > "$WORK/rates"; : > "$WORK/p99"; : > "$WORK/cpu"
  for run in $(seq "$RUNS"); do
    $BIN bench enrol --server "$url" --registry "$WORK/registry.tsv" --count "$ENROLMENTS" \
      --concurrency 32 --skip $(( (run - 1) * ENROLMENTS )) --server-pid $pid --json > "$WORK/run.json"
    field "['per_second']" < "$WORK/run.json" >> "$WORK/rates"
    field "['latency_ms']['p99']" < "$WORK/run.json" >> "$WORK/p99"
    field "['server_cpu_ms_per_op']" < "$WORK/run.json" >> "$WORK/cpu"
    echo "  run $run [$store]: $(cat "$WORK/run.json")"
  done
  printf 'enrol[%s]: median %.0f enrolments/s, p99 %.1f ms, server CPU %.2f ms/enrolment (%d runs of %d)\n' \
    "$store" "$(median < "$WORK/rates")" "$(median < "$WORK/p99")" "$(median < "$WORK/cpu")" "$RUNS" "$ENROLMENTS"
  kill $pid; wait $pid 2>/dev/null || true
done

#!/usr/bin/env bash
# Before and after: two cyberid binaries measured by bench/quick.sh in back-to-back pairs
# (A, B, A, B, …), so that both see the same machine state; prints each run's server CPU
# per operation, p99 and throughput, the medians, and B ÷ A of the median CPU.
#   bench/ab.sh A_BIN B_BIN [PAIRS=3] [MODE=login] [LEVEL=1] [N=5000] [C=32] [WARMUP=2000]
# Env: BENCH_DATABASE_URL (PostgreSQL instead of the embedded store, as for quick.sh).
# Loopback only; every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; PAIRS=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
ARGS=("$@")
source bench/lib.sh
OUT=$(mktemp -d "${TMPDIR:-/tmp}/cyberid-ab-XXXXXX")
trap 'rm -rf "$OUT"' EXIT
for pair in $(seq "$PAIRS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    BIN=$bin bench/quick.sh "${ARGS[@]}" > "$OUT/$side.$pair.json"
    printf '%s run %s: %.3f ms server CPU per op, p99 %.1f ms, %.0f ops/s\n' "$side" "$pair" \
      "$(get "$OUT/$side.$pair.json" "['server_cpu_ms_per_op']")" \
      "$(get "$OUT/$side.$pair.json" "['latency_ms']['p99']")" \
      "$(get "$OUT/$side.$pair.json" "['per_second']")"
    get "$OUT/$side.$pair.json" "['server_cpu_ms_per_op']" >> "$OUT/$side.cpu"
  done
done
a=$(median < "$OUT/A.cpu"); b=$(median < "$OUT/B.cpu")
printf 'median server CPU per op: A %.3f ms, B %.3f ms; B / A = %.3f\n' "$a" "$b" \
  "$(python3 -c "print($b / $a)")"

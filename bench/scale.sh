#!/usr/bin/env bash
# Login throughput at a small and a national-scale population, memory after many logins,
# disk per account. SQLite, durable; server on core 0, drivers on core 1.
#   bench/scale.sh [ACCOUNTS=1000000] [REGISTRY=10000000] [LOGINS_FOR_RSS=100000]
# Needs about 5 GB of disk and 10 minutes.
# Env: BIN (a cyberid binary to measure instead of building this checkout), TMPDIR (where
# the scratch data directory goes; its file system decides what a durable commit costs).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ACCOUNTS=${1:-1000000}; REGISTRY=${2:-10000000}; RSS_LOGINS=${3:-100000}
N=${N:-5000}; RUNS=${RUNS:-3}; C=${C:-32}; WARMUP=${WARMUP:-2000}
bench_setup scale
build_release
DATA=$WORK/data

# The benchmark's own wallets come from a separate registry file, imported after each
# population so that its records are the registry's.
"$BIN" registry generate --count 200000 --seed 777 --out "$WORK/wallets.tsv" --json >/dev/null

measure() { # label skip
  start_server 0 --data "$DATA"
  : > "$WORK/$1.rates"; : > "$WORK/$1.cpu"
  for run in $(seq "$RUNS"); do
    taskset -c 1 "$BIN" bench login --server "$URL" --data "$DATA" --registry "$WORK/wallets.tsv" \
      --skip $(( $2 + (run - 1) * C * 2 )) --count "$N" --warmup "$WARMUP" --concurrency "$C" \
      --server-pid "$SERVE_PID" --json > "$WORK/run.json"
    get "$WORK/run.json" "['per_second']" >> "$WORK/$1.rates"
    get "$WORK/run.json" "['server_cpu_ms_per_op']" >> "$WORK/$1.cpu"
  done
  printf '%s: median %.0f logins/s, %.3f ms server CPU per login (%s runs of %s)\n' "$1" \
    "$(median < "$WORK/$1.rates")" "$(median < "$WORK/$1.cpu")" "$RUNS" "$N"
  stop_server
}

SMALL=10000
"$BIN" bench populate --accounts $SMALL --registry $SMALL --seed 1 --data "$DATA" --json > "$WORK/pop1.json"
"$BIN" registry import "$WORK/wallets.tsv" --data "$DATA" --json >/dev/null
echo "population: $(get "$WORK/pop1.json" "['total_accounts']") accounts"
measure "at $SMALL accounts" 0

"$BIN" bench populate --accounts $((ACCOUNTS - SMALL)) --registry $((REGISTRY - SMALL)) --seed 1 --offset $SMALL --data "$DATA" --json > "$WORK/pop2.json"
"$BIN" registry import "$WORK/wallets.tsv" --data "$DATA" --json >/dev/null
printf 'populate: %s registry records at %.0f records/s; %s accounts at %.0f accounts/s; %.0f bytes of SQLite per account\n' \
  "$(get "$WORK/pop2.json" "['registry_records']")" "$(get "$WORK/pop2.json" "['registry_per_second']")" \
  "$(get "$WORK/pop2.json" "['accounts']")" "$(get "$WORK/pop2.json" "['accounts_per_second']")" \
  "$(get "$WORK/pop2.json" "['sqlite_bytes_per_account']")"
echo "population: $(get "$WORK/pop2.json" "['total_accounts']") accounts, database $(du -sh "$DATA" | cut -f1)"
measure "at $ACCOUNTS accounts and $REGISTRY registry records" $((RUNS * C * 2))

# Memory after many logins.
start_server 0 --data "$DATA"
taskset -c 1 "$BIN" bench login --server "$URL" --data "$DATA" --registry "$WORK/wallets.tsv" \
  --skip $((2 * RUNS * C * 2)) --count "$RSS_LOGINS" --concurrency "$C" --server-pid "$SERVE_PID" --json > "$WORK/rss.json"
printf 'after %s logins: server RSS %.1f MB (%s logins/s)\n' "$RSS_LOGINS" "$(get "$WORK/rss.json" "['server_rss_mb']")" \
  "$(python3 -c "print(round($(get "$WORK/rss.json" "['per_second']")))")"

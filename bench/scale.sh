#!/usr/bin/env bash
# Login throughput at a small and a national-scale population, memory after many logins,
# disk per account. SQLite, durable; server on core 0, drivers on core 1.
#   bench/scale.sh [ACCOUNTS=1000000] [REGISTRY=10000000] [LOGINS_FOR_RSS=100000]
# Needs about 5 GB of disk and 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ACCOUNTS=${1:-1000000}; REGISTRY=${2:-10000000}; RSS_LOGINS=${3:-100000}
N=${N:-5000}; RUNS=${RUNS:-3}; C=${C:-32}; WARMUP=${WARMUP:-2000}
WORK=$(mktemp -d /tmp/cyberid-scale-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export CYBERID_LOG=warn
cargo build --release -q -p cyberid
BIN=$PWD/target/release/cyberid
DATA=$WORK/data
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }

# The benchmark's own wallets come from a separate registry file, imported after each
# population so that its records are the registry's.
$BIN registry generate --count 200000 --seed 777 --out "$WORK/wallets.tsv" --json >/dev/null

measure() { # label skip
  taskset -c 0 $BIN serve --data "$DATA" --listen 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
  PID=$!
  for _ in $(seq 200); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
  URL=$(awk '{print $NF}' "$WORK/serve.out")
  : > "$WORK/$1.rates"; : > "$WORK/$1.cpu"
  for run in $(seq "$RUNS"); do
    taskset -c 1 $BIN bench login --server "$URL" --data "$DATA" --registry "$WORK/wallets.tsv" \
      --skip $(( $2 + (run - 1) * C * 2 )) --count "$N" --warmup "$WARMUP" --concurrency "$C" \
      --server-pid "$PID" --json > "$WORK/run.json"
    get "$WORK/run.json" "['per_second']" >> "$WORK/$1.rates"
    get "$WORK/run.json" "['server_cpu_ms_per_op']" >> "$WORK/$1.cpu"
  done
  printf '%s: median %.0f logins/s, %.3f ms server CPU per login (%s runs of %s)\n' "$1" \
    "$(median < "$WORK/$1.rates")" "$(median < "$WORK/$1.cpu")" "$RUNS" "$N"
  kill $PID; wait $PID 2>/dev/null || true
}

SMALL=10000
$BIN bench populate --accounts $SMALL --registry $SMALL --seed 1 --data "$DATA" --json > "$WORK/pop1.json"
$BIN registry import "$WORK/wallets.tsv" --data "$DATA" --json >/dev/null
echo "population: $(get "$WORK/pop1.json" "['total_accounts']") accounts"
measure "at $SMALL accounts" 0

$BIN bench populate --accounts $((ACCOUNTS - SMALL)) --registry $((REGISTRY - SMALL)) --seed 1 --offset $SMALL --data "$DATA" --json > "$WORK/pop2.json"
$BIN registry import "$WORK/wallets.tsv" --data "$DATA" --json >/dev/null
printf 'populate: %s registry records at %.0f records/s; %s accounts at %.0f accounts/s; %.0f bytes of SQLite per account\n' \
  "$(get "$WORK/pop2.json" "['registry_records']")" "$(get "$WORK/pop2.json" "['registry_per_second']")" \
  "$(get "$WORK/pop2.json" "['accounts']")" "$(get "$WORK/pop2.json" "['accounts_per_second']")" \
  "$(get "$WORK/pop2.json" "['sqlite_bytes_per_account']")"
echo "population: $(get "$WORK/pop2.json" "['total_accounts']") accounts, database $(du -sh "$DATA" | cut -f1)"
measure "at $ACCOUNTS accounts and $REGISTRY registry records" $((RUNS * C * 2))

# Memory after many logins.
taskset -c 0 $BIN serve --data "$DATA" --listen 127.0.0.1:0 > "$WORK/serve.out" 2>/dev/null &
PID=$!
for _ in $(seq 200); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
taskset -c 1 $BIN bench login --server "$(awk '{print $NF}' "$WORK/serve.out")" --data "$DATA" --registry "$WORK/wallets.tsv" \
  --skip $((2 * RUNS * C * 2)) --count "$RSS_LOGINS" --concurrency "$C" --server-pid "$PID" --json > "$WORK/rss.json"
printf 'after %s logins: server RSS %.1f MB (%s logins/s)\n' "$RSS_LOGINS" "$(get "$WORK/rss.json" "['server_rss_mb']")" \
  "$(python3 -c "print(round($(get "$WORK/rss.json" "['per_second']")))")"
kill $PID; wait $PID 2>/dev/null || true

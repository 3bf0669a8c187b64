#!/usr/bin/env bash
# The floor of one HTTP exchange on this machine: server CPU per `GET /healthz` (no store,
# no cryptography) over keep-alive HTTP/1.1 on loopback, 32 connections, server on core 0
# and wrk (Debian's package `wrk`) on core 1. A sign-in makes six such exchanges (seven at
# L2); this is what the HTTP stack and the kernel cost for each before any work is done.
#   bench/exchange.sh [SECONDS=5] [RUNS=3]
# Env: BIN (a cyberid binary to measure instead of building this checkout). Loopback only;
# each run stops after SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SECONDS_RUN=${1:-5}; RUNS=${2:-3}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
bench_setup exchange
build_release
start_server 0 --data "$WORK/data"
cpu() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
taskset -c 1 wrk -t1 -c32 -d2s "$URL/healthz" > /dev/null # warm-up
for _ in $(seq "$RUNS"); do
  before=$(cpu)
  requests=$(taskset -c 1 wrk -t1 -c32 -d"${SECONDS_RUN}s" "$URL/healthz" | awk '/requests in/ {print $1}')
  after=$(cpu)
  python3 -c "print(($after - $before) / $(getconf CLK_TCK) * 1e6 / $requests)" >> "$WORK/us"
  python3 -c "print($requests / $SECONDS_RUN)" >> "$WORK/rate"
done
printf 'server CPU per exchange: %.2f µs (median of %s runs: %s); %.0f exchanges/s\n' \
  "$(median < "$WORK/us")" "$RUNS" "$(xargs printf '%.2f\n' < "$WORK/us" | paste -sd' ')" "$(median < "$WORK/rate")"

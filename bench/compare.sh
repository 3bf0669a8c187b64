#!/usr/bin/env bash
# cyberid side by side with the reference OpenID provider (panva oidc-provider 9, in-memory
# store) on this machine: each server pinned to core 0, each driver to core 1, the same
# concurrency and counts, a warm-up first. Prints medians of RUNS runs and the ratios of
# each run, as BENCHMARKS.md records them.
#
#   bench/compare.sh [N] [RUNS]        N operations per measurement (default 5000), RUNS (3)
#
# Env: C (in flight, 32), WARMUP (5000, as the reference harness uses), NODE (node binary),
# PEER_SRC (the reference harness, default ../shared/bench/peer-oidc-provider),
# BENCH_DATABASE_URL (PostgreSQL; default the local one; set to "" to skip PostgreSQL), BIN
# (a cyberid binary instead of this checkout's release build). Loopback only; every loop
# has a fixed count.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N=${1:-5000}
RUNS=${2:-3}
C=${C:-32}
WARMUP=${WARMUP:-5000}
NODE=${NODE:-node}
PEER_SRC=${PEER_SRC:-../shared/bench/peer-oidc-provider}
DB=${BENCH_DATABASE_URL-postgres://postgres@127.0.0.1:5432/test}

bench_setup compare

[ -d "$PEER_SRC" ] || { echo "reference harness not found at $PEER_SRC (set PEER_SRC)"; exit 1; }
cp -r "$PEER_SRC" "$WORK/peer"
(cd "$WORK/peer" && npm ci --no-audit --no-fund --silent >/dev/null)
build_release
"$BIN" registry generate --count 50000 --seed 7 --out "$WORK/registry.tsv" --json >/dev/null

record() { echo "$2" >> "$WORK/$1"; }
last() { tail -1 "$WORK/$1"; }
ratio() { python3 -c "print($(last "$1") / $(last "$2"))"; }

peer_run() { # mode
  # exec: the pid is the server's own, and no shell in between reports its SIGTERM
  (cd "$WORK/peer" && NODE_ENV=production exec taskset -c 0 "$NODE" server.mjs) > "$WORK/peer.log" 2>&1 &
  SERVE_PID=$!
  disown "$SERVE_PID"
  for _ in $(seq 50); do curl -sf http://127.0.0.1:3000/__stats >/dev/null && break; sleep 0.2; done
  (cd "$WORK/peer" && taskset -c 1 "$NODE" bench.mjs --mode="$1" --n="$N" --c="$C" --warmup="$WARMUP" --json="$WORK/peer-$1.json" >/dev/null)
  stop_server
}

cyberid_bench() { # name mode level [store args...]
  local name=$1 mode=$2 level=$3; shift 3
  taskset -c 1 "$BIN" bench "$mode" --server "$URL" --registry "$WORK/registry.tsv" --level "$level" \
    --count "$N" --warmup "$WARMUP" --concurrency "$C" --server-pid "$SERVE_PID" --json "$@" > "$WORK/$name.json"
}

for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  peer_run login
  record peer_login_cpu "$(get "$WORK/peer-login.json" "['server']['ops_per_cpu_s']")"
  record peer_login_tput "$(get "$WORK/peer-login.json" "['login']['per_s']")"
  record peer_login_p99 "$(get "$WORK/peer-login.json" "['login']['p99_ms']")"
  peer_run token
  record peer_token_cpu "$(get "$WORK/peer-token.json" "['server']['ops_per_cpu_s']")"
  record peer_token_tput "$(get "$WORK/peer-token.json" "['token']['per_s']")"

  # The crypto floor on the server's core, in this run.
  taskset -c 0 "$BIN" bench floor --json > "$WORK/floor.json"
  record floor_us "$(get "$WORK/floor.json" "['floor_us']")"
  record l2_floor_us "$(get "$WORK/floor.json" "['l2_floor_us']")"
  record r_l2_floor "$(get "$WORK/floor.json" "['l2_over_l1']")"
  record pin_evaluate_us "$(get "$WORK/floor.json" "['pin_evaluate_us']")"
  record pin_verify_us "$(get "$WORK/floor.json" "['pin_verify_us']")"

  DATA="$WORK/sqlite-$run"
  "$BIN" registry import "$WORK/registry.tsv" --data "$DATA" --json >/dev/null
  start_server 0 --data "$DATA"
  cyberid_bench l1 login 1 --data "$DATA"
  cyberid_bench l2 login 2 --data "$DATA"
  cyberid_bench token token 1 --data "$DATA"
  RSS=$(awk '/VmRSS/{print int($2/1024)}' /proc/$SERVE_PID/status)
  stop_server
  record l1_cpu "$(get "$WORK/l1.json" "['ops_per_server_cpu_second']")"
  record l1_ms "$(get "$WORK/l1.json" "['server_cpu_ms_per_op']")"
  record l1_tput "$(get "$WORK/l1.json" "['per_second']")"
  record l1_p99 "$(get "$WORK/l1.json" "['latency_ms']['p99']")"
  record l2_ms "$(get "$WORK/l2.json" "['server_cpu_ms_per_op']")"
  record token_cpu "$(get "$WORK/token.json" "['ops_per_server_cpu_second']")"
  record token_tput "$(get "$WORK/token.json" "['per_second']")"
  record rss "$RSS"
  record r_login_cpu "$(ratio l1_cpu peer_login_cpu)"
  record r_login_tput "$(ratio l1_tput peer_login_tput)"
  record r_token_cpu "$(ratio token_cpu peer_token_cpu)"
  record r_token_tput "$(ratio token_tput peer_token_tput)"
  record r_l2 "$(ratio l2_ms l1_ms)"
  record r_floor "$(python3 -c "print($(last l1_ms) * 1000 / $(last floor_us))")"
  record r_l2_above_floor "$(python3 -c "print(($(last l2_ms) * 1000 - $(last l2_floor_us)) / ($(last l1_ms) * 1000 - $(last floor_us)))")"

  if [ -n "$DB" ]; then
    fresh_schema "$DB" "compare_$$"
    "$BIN" registry import "$WORK/registry.tsv" --data "$WORK/pg-keys" --database-url "$PG_URL" --json >/dev/null
    start_server 0 --data "$WORK/pg-keys" --database-url "$PG_URL"
    cyberid_bench pg login 1 --data "$WORK/pg-keys" --database-url "$PG_URL"
    stop_server
    rm -rf "$WORK/pg-keys"
    record pg_cpu "$(get "$WORK/pg.json" "['ops_per_server_cpu_second']")"
    record r_pg_cpu "$(ratio pg_cpu peer_login_cpu)"
  fi
  # This run's own figures, so that a median can be checked against its runs.
  printf '  L1 %.0f vs %.0f per CPU-s (%.2f×; %.1f× the floor), p99 %.1f vs %.1f ms; exchange %.0f vs %.0f (%.2f×); L2/L1 %.2f×%s\n' \
    "$(last l1_cpu)" "$(last peer_login_cpu)" "$(last r_login_cpu)" "$(last r_floor)" "$(last l1_p99)" "$(last peer_login_p99)" \
    "$(last token_cpu)" "$(last peer_token_cpu)" "$(last r_token_cpu)" "$(last r_l2)" \
    "$([ -n "$DB" ] && printf '; PostgreSQL %.0f (%.2f×)' "$(last pg_cpu)" "$(last r_pg_cpu)")" >&2
done

m() { median < "$WORK/$1"; }
printf '\nMedians of %s runs, N=%s, %s in flight, warm-up %s (server on core 0, driver on core 1)\n\n' "$RUNS" "$N" "$C" "$WARMUP"
printf '| measure | cyberid | reference | ratio (median of per-run ratios) |\n|---|---|---|---|\n'
printf '| full login (L1, SQLite durable): logins per server CPU-second | %.0f | %.0f | %.2f× |\n' "$(m l1_cpu)" "$(m peer_login_cpu)" "$(m r_login_cpu)"
printf '| full login: logins per second | %.0f | %.0f | %.2f× |\n' "$(m l1_tput)" "$(m peer_login_tput)" "$(m r_login_tput)"
printf '| full login: p99 at %s in flight, ms | %.1f | %.1f | |\n' "$C" "$(m l1_p99)" "$(m peer_login_p99)"
printf '| code exchange: per server CPU-second | %.0f | %.0f | %.2f× |\n' "$(m token_cpu)" "$(m peer_token_cpu)" "$(m r_token_cpu)"
printf '| code exchange: per second | %.0f | %.0f | %.2f× |\n' "$(m token_tput)" "$(m peer_token_tput)" "$(m r_token_tput)"
printf '| L2 login CPU / L1 login CPU | %.2f× | | |\n' "$(m r_l2)"
printf '| the same ratio for the crypto floors alone (PIN OPRF %.1f µs and PIN proof %.1f µs added) | %.2f× | | |\n' \
  "$(m pin_evaluate_us)" "$(m pin_verify_us)" "$(m r_l2_floor)"
printf '| and for what is above the floors | %.2f× | | |\n' "$(m r_l2_above_floor)"
if [ -n "$DB" ]; then
  printf '| full login (L1, PostgreSQL): logins per server CPU-second | %.0f | %.0f | %.2f× |\n' "$(m pg_cpu)" "$(m peer_login_cpu)" "$(m r_pg_cpu)"
fi
printf '| server CPU per L1 login, ms (multiple of the crypto floor, %.1f µs on this machine) | %.3f (%.1f×) | | |\n' "$(m floor_us)" "$(m l1_ms)" "$(m r_floor)"
printf '| server RSS after the run, MB | %s | | |\n' "$(m rss)"

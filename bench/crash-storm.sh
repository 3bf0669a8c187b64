#!/usr/bin/env bash
# Crash storm: mixed load against `cyberid serve` while the server is killed with `kill -9`
# at random moments and restarted on the same store, the invariants checked directly in the
# database after every kill.
#
#   bench/crash-storm.sh [KILLS=100] [sqlite|postgres|both]   (default: both)
#
# The load is `cyberid bench storm`: enrolments (a lost answer retried from the same device,
# as a wallet does), sign-ins at L1 and L2 approved by the wallet, code exchanges, and
# replays of codes already redeemed. It runs across the restarts and journals whatever the
# platform confirmed the moment it is confirmed. After each kill, with the server down, the
# store (sqlite3 on the data directory, or psql on a fresh PostgreSQL schema) must show:
#   - every account with a device and a credential, every device with a credential;
#   - no network number twice;
#   - no code redeemed twice: a code redeemed only of an approved sign-in, a replay marked
#     only after a redemption, every exchange the load saw answered with tokens redeemed,
#     every replay it saw refused marked; and no replay ever answered with tokens;
#   - every approval the wallet saw answered `approved` still approved;
#   - every enrolment the wallet saw confirmed present, with its network number and its
#     credential's status index; no enrolment retried from the same device refused;
#   - credentials: each status index once, each status valid (0, 1, 2), each of its own
#     account's device, at most one valid per device;
#   - and the status list served (by a node started on the side, which the load does not
#     know, so nothing changes meanwhile) equal to the stored statuses.
# Prints kills, operations, checks passed and time; fails at the first broken invariant
# (keeping the scratch directory, whose path it prints). Figures of the long run
# (100 kills on each store): BENCHMARKS.md, "Crash storms".
#
# Env: BIN (a cyberid binary; default: this checkout's release build), BENCH_DATABASE_URL
# (PostgreSQL; default postgres://postgres@127.0.0.1:5432/test), KILL_AFTER_MS (the range a
# kill comes after the server is up; default 300-2000), REGISTRY (people in the generated
# registry; default 20000 + 1000 per kill), TMPDIR. Needs sqlite3 and psql (Debian: sqlite3,
# postgresql-client) and python3. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

KILLS=${1:-100}
case "${2:-both}" in
  both) BACKENDS=(sqlite postgres) ;;
  sqlite|postgres) BACKENDS=("$2") ;;
  *) echo "usage: $0 [KILLS] [sqlite|postgres|both]" >&2; exit 2 ;;
esac
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
KILL_AFTER_MS=${KILL_AFTER_MS:-300-2000}
KILL_MIN=${KILL_AFTER_MS%-*}; KILL_MAX=${KILL_AFTER_MS#*-}
# Enough people that the enrolments never run out (a few hundred a second, release build).
REGISTRY=${REGISTRY:-$(( 20000 + KILLS * 1000 ))}
for tool in sqlite3 psql python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

bench_setup storm
# Enrolments interrupted by a kill after their attempt was counted stay counted as failed
# attempts from this one address: the storm's hundreds would reach the limit.
export CYBERID_LIMITS_ENROLMENT_FAILURES_PER_ADDRESS=1000000000 \
  CYBERID_LIMITS_ENROLMENT_FAILURES_PER_ID_NUMBER=1000000000
FAILED=0
storm_cleanup() {
  [ -z "${DRIVER_PID:-}" ] || kill -9 "$DRIVER_PID" 2>/dev/null || true
  [ -z "${NODE_PID:-}" ] || kill -9 "$NODE_PID" 2>/dev/null || true
  if [ "$FAILED" = 1 ]; then
    echo "scratch directory kept: $WORK" >&2
    [ -z "${SCHEMA_DB:-}" ] || echo "PostgreSQL schema kept: $SCHEMA" >&2
    return
  fi
  bench_cleanup
}
trap storm_cleanup EXIT
build_release

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# launch PORT NAME: `cyberid serve` on 127.0.0.1:PORT over the store, waited for; sets
# LAUNCHED (its pid). A port just freed by a kill may be taken meanwhile: a few tries.
launch() {
  local port=$1 name=$2
  for _ in $(seq 20); do
    # Removed here, not truncated by the child: the last start's line must not be read.
    rm -f "$WORK/$name.out"
    "$BIN" serve "${STORE[@]}" --listen "127.0.0.1:$port" > "$WORK/$name.out" 2>> "$WORK/$name.err" &
    LAUNCHED=$!
    disown "$LAUNCHED"
    for _ in $(seq 300); do
      grep -q listening "$WORK/$name.out" 2>/dev/null && return 0
      kill -0 "$LAUNCHED" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$LAUNCHED" 2>/dev/null || true
    sleep 0.25
  done
  echo "cyberid serve did not start on port $port:" >&2
  tail -5 "$WORK/$name.err" >&2
  FAILED=1
  exit 1
}

# gone PID: waits until the process has exited.
gone() {
  for _ in $(seq 200); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  echo "process $1 did not exit" >&2
  FAILED=1
  exit 1
}

# sql FILE: runs FILE against the store, rows as `a|b`.
sql() {
  if [ "$BACKEND" = sqlite ]; then
    sqlite3 -bail -batch -noheader -separator '|' "$WORK/data/cyberid.db" < "$1"
  else
    psql "$PG_URL" -qAtX -F '|' -v ON_ERROR_STOP=1 -f "$1"
  fi
}

# The journals as temporary tables (only well-formed lines: ids and numbers are base64url).
journal_tables() {
  echo "CREATE TEMP TABLE seen_approved (id TEXT);"
  echo "CREATE TEMP TABLE seen_redeemed (id TEXT);"
  echo "CREATE TEMP TABLE seen_replay_refused (id TEXT);"
  echo "CREATE TEMP TABLE seen_enrolled (network_number TEXT, status_index BIGINT);"
  echo "BEGIN;"
  local table file
  for table in approved redeemed replay_refused; do
    file=$JOURNAL/${table/_/-}
    grep -E '^[A-Za-z0-9_-]+$' "$file" | sed "s/.*/INSERT INTO seen_$table VALUES ('&');/" || true
  done
  grep -E '^[A-Za-z0-9]+ [0-9]+$' "$JOURNAL/enrolled" |
    sed -E "s/^(.*) (.*)$/INSERT INTO seen_enrolled VALUES ('\1', \2);/" || true
  echo "COMMIT;"
}

# Each invariant: a description and the number of rows that break it (0 when it holds).
INVARIANTS=$(cat <<'SQL'
SELECT 'accounts without a device', COUNT(*) FROM accounts a
  WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.account_id = a.id);
SELECT 'accounts without a credential', COUNT(*) FROM accounts a
  WHERE NOT EXISTS (SELECT 1 FROM credentials c WHERE c.account_id = a.id);
SELECT 'devices without a credential', COUNT(*) FROM devices
  WHERE id NOT IN (SELECT device_id FROM credentials);
SELECT 'network numbers taken twice', COUNT(*) - COUNT(DISTINCT network_number) FROM accounts;
SELECT 'status indexes used twice', COUNT(*) - COUNT(DISTINCT status_index) FROM credentials;
SELECT 'credentials with a status that is not 0, 1 or 2', COUNT(*) FROM credentials
  WHERE status NOT IN (0, 1, 2);
SELECT 'credentials bound to another account''s device', COUNT(*) FROM credentials c
  JOIN devices d ON d.id = c.device_id WHERE d.account_id <> c.account_id;
SELECT 'devices with two valid credentials', COUNT(*) FROM (SELECT device_id FROM credentials
  WHERE status = 0 GROUP BY device_id HAVING COUNT(*) > 1) AS twice;
SELECT 'codes redeemed of sign-ins not approved', COUNT(*) FROM login_transactions
  WHERE code_redeemed_at IS NOT NULL AND status <> 'approved';
SELECT 'codes marked replayed but never redeemed', COUNT(*) FROM login_transactions
  WHERE code_replayed_at IS NOT NULL AND code_redeemed_at IS NULL;
SELECT 'approvals the wallet saw confirmed, not approved', COUNT(*) FROM seen_approved s
  WHERE NOT EXISTS (SELECT 1 FROM login_transactions l WHERE l.id = s.id AND l.status = 'approved');
SELECT 'codes exchanged for tokens, not redeemed', COUNT(*) FROM seen_redeemed s
  WHERE NOT EXISTS (SELECT 1 FROM login_transactions l
                    WHERE l.id = s.id AND l.code_redeemed_at IS NOT NULL);
SELECT 'replays refused, not marked', COUNT(*) FROM seen_replay_refused s
  WHERE NOT EXISTS (SELECT 1 FROM login_transactions l
                    WHERE l.id = s.id AND l.code_replayed_at IS NOT NULL);
SELECT 'enrolments confirmed, missing', COUNT(*) FROM seen_enrolled s
  WHERE NOT EXISTS (SELECT 1 FROM accounts a JOIN credentials c ON c.account_id = a.id
                    WHERE a.network_number = s.network_number AND c.status_index = s.status_index);
SQL
)
CHECKS_PER_ROUND=$(grep -c '^SELECT' <<< "$INVARIANTS")

# check_store: every invariant holds in the store (and the load saw no violation).
check_store() {
  { journal_tables; echo "$INVARIANTS"; } > "$WORK/check.sql"
  sql "$WORK/check.sql" > "$WORK/check.out"
  local broken
  broken=$(awk -F'|' '$2 != 0' "$WORK/check.out")
  if [ -s "$JOURNAL/violations" ]; then
    broken+=$'\n'"the load saw: $(sort "$JOURNAL/violations" | uniq -c | head -5)"
  fi
  if [ -n "${broken//$'\n'/}" ] || [ "$(wc -l < "$WORK/check.out")" -ne "$CHECKS_PER_ROUND" ]; then
    echo "[$BACKEND] invariant broken after kill $1:" >&2
    echo "$broken" >&2
    FAILED=1
    exit 1
  fi
  CHECKS=$(( CHECKS + CHECKS_PER_ROUND + 1 ))
}

# check_status_list: a node the load does not know serves status list 0; every stored
# credential's status is the one it serves.
check_status_list() {
  echo "SELECT status_index, status FROM credentials WHERE status_index < 1048576;" > "$WORK/statuses.sql"
  sql "$WORK/statuses.sql" > "$WORK/statuses.out"
  launch 0 side
  local side=$LAUNCHED listed=0
  python3 - "$(awk '/listening/ {print $NF}' "$WORK/side.out")/status/0" "$WORK/statuses.out" <<'PY' || listed=$?
import base64, json, sys, urllib.request, zlib
def unpad(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
token = urllib.request.urlopen(sys.argv[1], timeout=60).read().decode()
status_list = json.loads(unpad(token.split(".")[1]))["status_list"]
bits = status_list["bits"]
entries = zlib.decompress(unpad(status_list["lst"]))
per_byte, mask = 8 // bits, (1 << bits) - 1
wrong = 0
for line in open(sys.argv[2]):
    index, stored = map(int, line.split("|"))
    served = (entries[index // per_byte] >> (index % per_byte * bits)) & mask
    if served != stored:
        wrong += 1
        print(f"status list entry {index}: served {served}, stored {stored}", file=sys.stderr)
sys.exit(1 if wrong else 0)
PY
  kill "$side" 2>/dev/null || true
  gone "$side"
  if [ "$listed" != 0 ]; then
    echo "[$BACKEND] the served status list differs from the store after kill $1" >&2
    FAILED=1
    exit 1
  fi
  CHECKS=$(( CHECKS + 1 ))
}

echo "== crash storm: $KILLS kills on ${BACKENDS[*]}, a kill ${KILL_MIN}-${KILL_MAX} ms after each start"
"$BIN" registry generate --count "$REGISTRY" --seed 13 --out "$WORK/registry.tsv" --json > /dev/null
for BACKEND in "${BACKENDS[@]}"; do
  started=$(date +%s.%N)
  rm -rf "$WORK/data"
  STORE=(--data "$WORK/data")
  if [ "$BACKEND" = postgres ]; then
    fresh_schema "$DB" "storm_$$"
    STORE+=(--database-url "$PG_URL")
  fi
  JOURNAL=$WORK/journal-$BACKEND
  "$BIN" registry import "$WORK/registry.tsv" "${STORE[@]}" --json > /dev/null
  PORT=$(free_port)
  launch "$PORT" node
  NODE_PID=$LAUNCHED
  "$BIN" bench storm --server "http://127.0.0.1:$PORT" "${STORE[@]}" --registry "$WORK/registry.tsv" \
    --journal "$JOURNAL" --json > "$WORK/storm-$BACKEND.json" 2> "$WORK/storm-$BACKEND.err" &
  DRIVER_PID=$!
  # The storm enrols its sign-in wallets first; the kills start once it runs.
  for _ in $(seq 600); do
    [ -e "$JOURNAL/approved" ] && break
    kill -0 "$DRIVER_PID" 2>/dev/null || { cat "$WORK/storm-$BACKEND.err" >&2; FAILED=1; exit 1; }
    sleep 0.1
  done
  CHECKS=0
  for kill in $(seq "$KILLS"); do
    sleep "$(python3 -c "import random; print(random.uniform($KILL_MIN, $KILL_MAX) / 1000)")"
    kill -9 "$NODE_PID"
    gone "$NODE_PID"
    unset NODE_PID
    # Answers the load received just before the kill reach its journals.
    sleep 0.1
    check_store "$kill"
    check_status_list "$kill"
    launch "$PORT" node
    NODE_PID=$LAUNCHED
  done
  kill -TERM "$DRIVER_PID"
  wait "$DRIVER_PID" || { cat "$WORK/storm-$BACKEND.err" >&2; FAILED=1; exit 1; }
  unset DRIVER_PID
  check_store final
  kill "$NODE_PID" 2>/dev/null || true
  gone "$NODE_PID"
  unset NODE_PID
  report=$WORK/storm-$BACKEND.json
  printf '[%s] %d kills in %.0f s: %d enrolments confirmed (%d after a lost answer), %d sign-ins approved, %d codes exchanged, %d replays refused, %d operations interrupted or refused; %d invariant checks passed, 0 violations\n' \
    "$BACKEND" "$KILLS" "$(python3 -c "import time; print(time.time() - $started)")" \
    "$(get "$report" "['enrolled']")" "$(get "$report" "['enrolments_resumed']")" \
    "$(get "$report" "['sign_ins_approved']")" "$(get "$report" "['codes_redeemed']")" \
    "$(get "$report" "['replays_refused']")" "$(get "$report" "['failed']")" "$CHECKS"
done

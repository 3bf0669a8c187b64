# Shared by the bench scripts (sourced, not run): a scratch directory that is removed on
# exit, medians, JSON fields, and a `cyberid serve` started and stopped by its pid.
# Loopback only: every server listens on 127.0.0.1.

# bench_setup NAME: WORK is a new directory under $TMPDIR (default /tmp; its file system is
# the store's, so it decides what a durable commit costs); on exit the server started last is
# stopped, a schema made by fresh_schema is dropped and WORK is removed.
bench_setup() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/cyberid-$1-XXXXXX")
  export CYBERID_LOG=warn PGOPTIONS="--client-min-messages=warning"
  # The load comes from one address for one client, far beyond what one person or service
  # may start: the limits are raised, not turned off, so that counting them is measured.
  export CYBERID_LIMITS_SIGN_INS_PER_ADDRESS=1000000000 \
    CYBERID_LIMITS_SIGN_INS_PER_CLIENT=1000000000 \
    CYBERID_LIMITS_PENDING_SIGN_INS_PER_CLIENT=1000000000 \
    CYBERID_LIMITS_TOKEN_REQUESTS_PER_CLIENT=1000000000
  trap bench_cleanup EXIT
}

bench_cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  stop_server
  [ -z "${SCHEMA_DB:-}" ] || psql "$SCHEMA_DB" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true
  rm -rf "$WORK"
}

# build_release: BIN is this checkout's release binary, unless BIN is already set (to
# measure another build).
build_release() {
  if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p cyberid
    BIN=$PWD/target/release/cyberid
  fi
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# get FILE EXPR: a field of a JSON file, e.g. get run.json "['latency_ms']['p99']".
get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }

# fresh_schema DB NAME: an empty PostgreSQL schema NAME in DB, dropped on exit; PG_URL
# connects to DB with that schema first on the search path.
fresh_schema() {
  SCHEMA_DB=$1 SCHEMA=$2
  psql "$SCHEMA_DB" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
  PG_URL="$SCHEMA_DB?options=-csearch_path%3D$SCHEMA"
}

# start_server CORE ARGS...: `cyberid serve ARGS` on 127.0.0.1 (pinned to CORE unless it is
# empty), waited for; sets SERVE_PID and URL.
start_server() {
  local core=$1; shift
  local pin=()
  [ -z "$core" ] || pin=(taskset -c "$core")
  "${pin[@]}" "$BIN" serve "$@" --listen 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
  SERVE_PID=$!
  disown "$SERVE_PID" # no "Terminated" report from the shell when it is stopped
  for _ in $(seq 200); do
    grep -q listening "$WORK/serve.out" 2>/dev/null && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.1
  done
  URL=$(awk '/listening/ {print $NF}' "$WORK/serve.out")
  if [ -z "$URL" ]; then
    echo "cyberid serve did not start:" >&2
    cat "$WORK/serve.out" "$WORK/serve.err" >&2 2>/dev/null || true
    exit 1
  fi
}

# stop_server: the server started last, if any. Bounded: one that ignores SIGTERM for 10 s
# is killed.
stop_server() {
  [ -n "${SERVE_PID:-}" ] || return 0
  kill "$SERVE_PID" 2>/dev/null || true
  # Once it is gone, its pid may be the system's to reuse: it is signalled no more.
  for _ in $(seq 100); do
    kill -0 "$SERVE_PID" 2>/dev/null || { unset SERVE_PID; return 0; }
    sleep 0.1
  done
  kill -9 "$SERVE_PID" 2>/dev/null || true
  unset SERVE_PID
}

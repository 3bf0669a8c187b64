#!/usr/bin/env bash
# What a login page waiting for the wallet's decision costs the server: server CPU per
# immediate status request (what polling once a second paid per second of waiting), and
# per second of a held status request (`?wait=1`, what the login page does). SQLite;
# server on core 0, the Python client on core 1; loopback only, fixed counts.
#   bench/waiting.sh [REQUESTS=20000] [WAITERS=1000] [SECONDS=20] [RUNS=3]
# Env: BIN (a cyberid binary to measure instead of building this checkout), TMPDIR (where
# the scratch data directory goes; its file system decides what a durable commit costs).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
REQUESTS=${1:-20000}; WAITERS=${2:-1000}; SECONDS_HELD=${3:-20}; RUNS=${4:-3}
# The platform answers a held request after 25 s; the held requests are measured for
# SECONDS after a one-second settle.
[ "$SECONDS_HELD" -lt 24 ] || { echo "SECONDS must be under 24 (requests are held 25 s)" >&2; exit 1; }
bench_setup waiting
# Each held request is an open socket at both ends: room for them in the server and client.
ulimit -n $(( WAITERS + 1024 )) 2>/dev/null || { echo "cannot open $WAITERS sockets (ulimit -Hn: $(ulimit -Hn))" >&2; exit 1; }
build_release
start_server 0 --data "$WORK/data"
# The keys are created by the first start; register the client once they exist.
"$BIN" admin rp add --name Shop --redirect-uri http://127.0.0.1/cb --data "$WORK/data" --json > "$WORK/rp.json"
cat > "$WORK/waiting.py" <<'PY'
import http.client, json, os, re, sys, threading, time
url, pid, client_id, mode, count, seconds = sys.argv[1:7]
host, port = url.split("//")[1].split(":")
pid, count, seconds = int(pid), int(count), float(seconds)
def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
def sign_in():
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", f"/authorize?response_type=code&client_id={client_id}"
                 "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=openid&state=s&nonce=n"
                 "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
    page = conn.getresponse().read().decode()
    return re.search(r'data-page="[^"]*/login/([^"]+)"', page).group(1)
if mode == "immediate":
    ids = [sign_in() for _ in range(8)]
    conn = http.client.HTTPConnection(host, int(port))
    def ask(i):
        conn.request("GET", f"/login/{ids[i % 8]}/status")
        assert json.loads(conn.getresponse().read())["status"] == "pending"
    for i in range(500):
        ask(i)
    before = cpu()
    for i in range(count):
        ask(i)
    print((cpu() - before) / count * 1e6)
else:
    ids = [sign_in() for _ in range(count)]
    def hold(id):
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        conn.request("GET", f"/login/{id}/status?wait=1")
        conn.getresponse().read()
    threads = [threading.Thread(target=hold, args=(id,)) for id in ids]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    before = cpu()
    time.sleep(seconds)
    print((cpu() - before) / (count * seconds) * 1e6)
    for thread in threads:
        thread.join()
PY
CLIENT=$(get "$WORK/rp.json" "['client_id']")
: > "$WORK/immediate"; : > "$WORK/held"
for run in $(seq "$RUNS"); do
  taskset -c 1 python3 "$WORK/waiting.py" "$URL" "$SERVE_PID" "$CLIENT" immediate "$REQUESTS" 0 >> "$WORK/immediate"
  taskset -c 1 python3 "$WORK/waiting.py" "$URL" "$SERVE_PID" "$CLIENT" held "$WAITERS" "$SECONDS_HELD" >> "$WORK/held"
done
printf 'immediate status request: %.1f µs server CPU each (median of %s runs of %s)\n' "$(median < "$WORK/immediate")" "$RUNS" "$REQUESTS"
printf 'held status request: %.2f µs server CPU per second held (median of %s runs, %s held for %s s)\n' \
  "$(median < "$WORK/held")" "$RUNS" "$WAITERS" "$SECONDS_HELD"

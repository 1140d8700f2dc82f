#!/usr/bin/env bash
# Load benchmark on 127.0.0.1, end to end: installs wrk and the peers, then
#  1. POSTs the same signed 1 KiB GoShiip webhook to three routes of one
#     server (benches/bench_server.rs): bare, a hand-written reference doing
#     only the HMAC and the event's fields, and the verified route; in $ROUNDS
#     rounds (default 6) whose order alternates (bare, reference, verified,
#     then back), and reports each ratio of requests/s as the median over the
#     rounds with its spread (min-max), and the server's CPU time a request;
#  2. sends it to GoShiip's own Express and Flask (gunicorn) sample receivers;
#  3. measures the example server's peak RSS under 256 concurrent 1 MiB bodies
#     sent whole, then under 32 sent in 1-byte chunks.
# Servers run on core 0, wrk on core 1; each run lasts $DURATION seconds
# (default 5), but the chunked one $CHUNKED_DURATION (default 60): the server
# parses 1-byte chunks at about 1 MiB a second, and every connection must get
# its whole body in. Prints Markdown tables. Usage: bash benches/load.sh
# ROUNDS_ONLY=1 runs step 1 alone (about 3 x $ROUNDS x $DURATION seconds);
# MEMORY_ONLY=1 runs step 3 alone; BENCH_SERVER=path measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-6}
ROUNDS_ONLY=${ROUNDS_ONLY:-}
CONNECTIONS=${CONNECTIONS:-64}
MEMORY_CONNECTIONS=${MEMORY_CONNECTIONS:-256}
CHUNKED_CONNECTIONS=${CHUNKED_CONNECTIONS:-32}
CHUNKED_DURATION=${CHUNKED_DURATION:-60}
MEMORY_ONLY=${MEMORY_ONLY:-}
# Another build of benches/bench_server.rs to measure (an older commit's, say).
BENCH_SERVER=${BENCH_SERVER:-./target/release/examples/bench_server}
SECRET=your_secret_key
work=target/load-bench
mkdir -p "$work"

if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
peers=""
[ -z "$MEMORY_ONLY" ] && [ -z "$ROUNDS_ONLY" ] && peers=1
if [ -n "$peers" ] && [ ! -x "$work/venv/bin/gunicorn" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q -r benches/peers/requirements.txt
fi
if [ -n "$peers" ] && [ ! -d "$work/node/node_modules/express" ]; then
    mkdir -p "$work/node"
    cp benches/peers/package.json "$work/node/"
    (cd "$work/node" && npm install --silent --no-audit --no-fund >/dev/null)
fi
cargo build -q --release --example server
cargo build -q --release -p shipment-webhooks-benches --example bench_server

# A signed GoShiip webhook of about $1 bytes: body in $2, wrk script in $3.
make_request() {
    python3 - "$1" "$2" "$3" "$SECRET" <<'PY'
import hashlib, hmac, json, sys
size, body_path, lua_path, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].encode()
event = {"shipment": {"data": {"destination": "David Ola Ojeniyi St, Ibadan, Nigeria",
    "origin": "1 Kayode Otitoju St, Lekki Phase I 106104, Lekki, Nigeria", "reference": "5lqijs7rm9n0",
    "id": "565", "status": "In Progress", "extra": "pending,In progress,picked up,delivered."},
    "carrier": "DHL", "history": []}}
step = {"status": "In Progress", "at": "2025-05-01T09:30:00Z", "location": "Lekki hub, Lagos"}
while len(json.dumps(event, separators=(",", ":"))) + 70 < size:
    event["shipment"]["history"].append(step)
body = json.dumps(event, separators=(",", ":")).encode()
open(body_path, "wb").write(body)
signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
open(lua_path, "w").write(f'''wrk.method = "POST"
local file = io.open("{body_path}", "rb")
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Signature"] = "{signature}"
''')
PY
}

# The signed body in $1 as one raw HTTP/1.1 request in 1-byte chunks (6 bytes
# of chunked framing each), for wrk to send as is: wrk script in $2.
make_fragmented() {
    python3 - "$1" "$1.chunked" "$2" "$SECRET" <<'PY'
import hashlib, hmac, sys
body_path, raw_path, lua_path, secret = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
body = open(body_path, "rb").read()
signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
head = ("POST /webhooks/goshiip HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Signature: {signature}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
chunks = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body)))
open(raw_path, "wb").write(head + chunks + b"0\r\n\r\n")
open(lua_path, "w").write(f'''local file = io.open("{raw_path}", "rb")
local raw = file:read("*a")
file:close()
request = function() return raw end
''')
PY
}

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    server_pid=""
}
trap stop_server EXIT

# Starts "$@" on core 0 and waits for port $port.
start_server() {
    taskset -c 0 "$@" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the server on port $port did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
}

# Runs wrk on core 1 against $1 with script $2, $3 connections (else
# $CONNECTIONS) for $4 seconds (else $DURATION); prints "requests/s p99
# non-2xx cpu", cpu being the server's CPU time per request in µs.
load() {
    local out seconds=${4:-$DURATION} ticks
    ticks=$(cpu_ticks)
    out=$(taskset -c 1 wrk -t1 -c"${3:-$CONNECTIONS}" -d"${seconds}s" --timeout "${seconds}s" --latency -s "$2" "$1")
    echo "$out" > "$work/last-wrk.txt"
    local rps p99 bad
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
    # A wrong secret or a crashed server would otherwise be measured as fast refusals.
    if [ -z "$rps" ] || [ "${bad:-0}" != 0 ] || grep -q "Socket errors" <<<"$out"; then
        echo "wrk against $1 did not get only 2xx answers:" >&2
        echo "$out" >&2
        exit 1
    fi
    local requests cpu
    requests=$(awk '$2 == "requests" && $3 == "in" {print $1}' <<<"$out")
    cpu=$(python3 -c "n = ${requests:-0}; print(f'{($(cpu_ticks) - $ticks) / $(getconf CLK_TCK) * 1e6 / n:.2f}' if n else '-')")
    echo "$rps ${p99:-?} ${bad:-0} $cpu"
}

# User and system CPU time of the server so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

if [ -z "$MEMORY_ONLY" ]; then
make_request 1024 "$work/body-1k.json" "$work/post-1k.lua"
port=3101
start_server env PORT=$port WORKERS=1 GOSHIIP_WEBHOOK_SECRET=$SECRET "$BENCH_SERVER"
# Rounds on one server whose order turns back each time (bare, reference,
# verified, then verified, reference, bare): drift (the other core's load,
# the machine's clock) reaches every route alike, and the median ignores an
# outlier round.
round_rows="" ratios=""
for round in $(seq "$ROUNDS"); do
    routes="bare reference webhooks/goshiip"
    [ $((round % 2)) = 0 ] && routes="webhooks/goshiip reference bare"
    for route in $routes; do
        read -r rps p99 bad cpu < <(load "http://127.0.0.1:$port/$route" "$work/post-1k.lua")
        case $route in
            bare) bare_rps=$rps bare_p99=$p99 bare_bad=$bad bare_cpu=$cpu ;;
            reference) reference_rps=$rps reference_cpu=$cpu ;;
            *) verified_rps=$rps verified_p99=$p99 verified_bad=$bad verified_cpu=$cpu ;;
        esac
    done
    r=$(ratio "$verified_rps" "$bare_rps") f=$(ratio "$reference_rps" "$bare_rps") v=$(ratio "$verified_rps" "$reference_rps")
    ratios+="$r,$f,$v,$bare_cpu,$reference_cpu,$verified_cpu "
    round_rows+="| $round | $bare_rps | $reference_rps | $verified_rps | $bare_cpu | $reference_cpu | $verified_cpu | $r | $f | $v |"$'\n'
done
stop_server
summary=$(python3 -c "
import statistics, sys
rows = [[float(x) for x in r.split(',')] for r in sys.argv[1:]]
columns = list(zip(*rows))
names = ['verified / bare', 'reference / bare', 'verified / reference']
print('; '.join(f'{n} **{statistics.median(c):.2f}**, spread {min(c):.2f}-{max(c):.2f}' for n, c in zip(names, columns)), end='. ')
print('Server CPU a request: bare {:.2f} µs, reference {:.2f} µs, verified {:.2f} µs'.format(*map(statistics.median, columns[3:])))" $ratios)

cat <<TABLE
Rounds: wrk -t1 -c$CONNECTIONS -d${DURATION}s on core 1, bench_server on core 0 (one runtime thread), one signed $(stat -c %s "$work/body-1k.json")-byte GoShiip webhook; bare, reference, verified, then back, $ROUNDS times.

| round | bare requests/s | reference requests/s | verified requests/s | bare CPU µs / request | reference | verified | verified / bare | reference / bare | verified / reference |
|---|---|---|---|---|---|---|---|---|---|
$(printf '%s' "$round_rows")

Medians over $ROUNDS rounds: $summary.

TABLE
fi

if [ -n "$peers" ]; then
port=3102
start_server env PORT=$port NODE_PATH="$PWD/$work/node/node_modules" GOSHIIP_WEBHOOK_SECRET=$SECRET node benches/peers/express.js
read -r express_rps express_p99 express_bad _ < <(load "http://127.0.0.1:$port/webhook" "$work/post-1k.lua")
stop_server

port=3103
start_server env GOSHIIP_WEBHOOK_SECRET=$SECRET "$work/venv/bin/gunicorn" --chdir benches/peers -w 1 -b "127.0.0.1:$port" flask_app:app
read -r flask_rps flask_p99 flask_bad _ < <(load "http://127.0.0.1:$port/webhook" "$work/post-1k.lua")
stop_server

cat <<TABLE
Peers: wrk -t1 -c$CONNECTIONS -d${DURATION}s on core 1, each server on core 0, against the last round's bare route.

| receiver | requests/s | p99 latency | non-2xx | requests/s vs bare axum |
|---|---|---|---|---|
| bare axum route (reads \`Bytes\`, answers 200), last round | $bare_rps | $bare_p99 | $bare_bad | 1.00 |
| verified route (\`GoShiipSignature\` + \`ShipmentEvent\`), last round | $verified_rps | $verified_p99 | $verified_bad | $(ratio "$verified_rps" "$bare_rps") |
| GoShiip's Express sample (node $(node --version)) | $express_rps | $express_p99 | $express_bad | $(ratio "$express_rps" "$bare_rps") |
| GoShiip's Flask sample (gunicorn, 1 sync worker) | $flask_rps | $flask_p99 | $flask_bad | $(ratio "$flask_rps" "$bare_rps") |

TABLE
fi

[ -n "$ROUNDS_ONLY" ] && exit 0

# Peak memory: connections sending bodies just under the 1 MiB limit at once,
# whole, then in 1-byte chunks; a fresh server for each.
make_request 1040000 "$work/body-1m.json" "$work/post-1m.lua"
make_fragmented "$work/body-1m.json" "$work/post-1m-chunks.lua"
# One memory run on a fresh server: body $1, $2 connections for $3 seconds,
# wrk script $4; adds a row to $memory_rows.
memory_rows=""
memory_run() {
    port=3104
    start_server env PORT=$port RUST_LOG=warn GOSHIIP_WEBHOOK_SECRET=$SECRET ./target/release/examples/server
    local idle_kib peak_kib rps p99 bad
    idle_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
    read -r rps p99 bad _ < <(load "http://127.0.0.1:$port/webhooks/goshiip" "$4" "$2" "$3")
    peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
    stop_server
    memory_rows+="| $1 | $2 | ${3}s | $rps | $bad | $((idle_kib / 1024)) MiB | $((peak_kib / 1024)) MiB | $((idle_kib / 1024 + $2)) MiB | $(ratio "$peak_kib" "($idle_kib + $2 * 1024)") |"$'\n'
}
memory_run whole "$MEMORY_CONNECTIONS" "$DURATION" "$work/post-1m.lua"
memory_run "1-byte chunks" "$CHUNKED_CONNECTIONS" "$CHUNKED_DURATION" "$work/post-1m-chunks.lua"

cat <<TABLE
Memory: examples/server under wrk -t1, signed $(stat -c %s "$work/body-1m.json")-byte GoShiip bodies sent whole (\`Content-Length\`) or in 1-byte chunks ($(stat -c %s "$work/body-1m.json.chunked") bytes a request). Bound: idle RSS + connections x the 1 MiB limit.

| body | connections | run | requests/s | non-2xx | idle RSS | peak RSS | bound | peak / bound |
|---|---|---|---|---|---|---|---|---|
TABLE
printf '%s' "$memory_rows"

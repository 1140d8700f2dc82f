#!/usr/bin/env bash
# Burn-down benchmark (issue 21): the inbox's worker and graphile-worker
# draining the same preloaded backlog on one PostgreSQL cluster, and the
# inbox on SQLite. Each run preloads $WEBHOOKS (default 20,000) webhooks or
# jobs over $WEBHOOKS/4 shipments (four events each, in order) into a fresh
# schema or file, untimed, then times the drain with a no-op handler and
# checks that every shipment's events were handled once each, in order
# (benches/burndown.rs and benches/peers/graphile-burndown.js say exactly how).
#
# It installs graphile-worker (benches/peers/package.json) under
# target/burndown/node, builds the bench, starts a throwaway cluster with
# .ci/with-postgres (unless SHIPMENT_WEBHOOKS_TEST_POSTGRES already names
# one), loads pg_stat_statements into it (a restart of that cluster; skipped
# on a cluster it did not start), then runs $ROUNDS rounds (default 3), each
# running every system and setting once, in reverse order every other round:
#   inbox-postgres at worker concurrency $INBOX_CONCURRENCY (4 16 64),
#   graphile-worker at concurrency $GRAPHILE_CONCURRENCY (24) in each of
#   $GRAPHILE_MODES (defaults: its defaults; batched: localQueue of 500 and
#   completeJobBatchDelay/failJobBatchDelay 0, as its performance page sets),
#   inbox-sqlite-full at $INBOX_CONCURRENCY (SQLITE=0 leaves it out).
# The handler does nothing but yield once (so that a second call about the
# same shipment running beside it is seen); HANDLER=return makes it return at
# once (overlaps then go unseen), HANDLER=n sleep n ms. A run gives up after $RUN_TIMEOUT seconds (120) of preload or of drain and
# is reported as a timeout; a run whose process hangs is killed after twice
# that and a minute. Prints a Markdown table: handled/s as the median round
# and its range (min-max), order violations, and on PostgreSQL transactions,
# row updates and statements per webhook over the drain; then the most
# frequent statements of the first round. Each run's JSON line is kept in
# target/burndown/results.jsonl, its output in target/burndown/logs/.
# Exits with 1 if an inbox run had an order violation or gave up.
#
# Usage: bash benches/burndown.sh
#        ROUNDS=1 WEBHOOKS=4000 bash benches/burndown.sh   # a quick check
set -euo pipefail
cd "$(dirname "$0")/.."
script=$PWD/benches/burndown.sh

ROUNDS=${ROUNDS:-3}
WEBHOOKS=${WEBHOOKS:-20000}
INBOX_CONCURRENCY=${INBOX_CONCURRENCY:-4 16 64}
GRAPHILE_CONCURRENCY=${GRAPHILE_CONCURRENCY:-24}
GRAPHILE_MODES=${GRAPHILE_MODES:-defaults batched}
SQLITE=${SQLITE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
HANDLER=${HANDLER:-yield}
BATCH=${BATCH:-}
work=target/burndown

if [ -z "${BURNDOWN_BIN:-}" ]; then
    # Outside the cluster: the peers and the bench, then the cluster.
    command -v node >/dev/null || { echo "node is needed for graphile-worker" >&2; exit 1; }
    command -v python3 >/dev/null || { echo "python3 is needed for the summary" >&2; exit 1; }
    mkdir -p "$work/node"
    if ! cmp -s benches/peers/package.json "$work/node/package.json" \
        || [ ! -d "$work/node/node_modules/graphile-worker" ]; then
        cp benches/peers/package.json "$work/node/"
        (cd "$work/node" && npm install --silent --no-audit --no-fund >/dev/null)
    fi
    echo "building benches/burndown.rs (release)" >&2
    BURNDOWN_BIN=$(cargo build --release -p shipment-webhooks-benches --bench burndown --message-format=json-render-diagnostics \
        | python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and message["target"]["name"] == "burndown":
        print(message["executable"])')
    [ -x "$BURNDOWN_BIN" ] || { echo "the bench did not build" >&2; exit 1; }
    export BURNDOWN_BIN
    if [ -n "${SHIPMENT_WEBHOOKS_TEST_POSTGRES:-}" ]; then
        exec bash "$script" "$@"
    fi
    BURNDOWN_OWN_CLUSTER=1 exec .ci/with-postgres bash "$script" "$@"
fi

url=$SHIPMENT_WEBHOOKS_TEST_POSTGRES
# node-postgres takes the socket directory and port as query parameters of
# a URL without a host; .ci/with-postgres gives them so (host=/tmp/...,
# port 54329, user and database postgres). Other URLs are passed on as they are.
GRAPHILE_DATABASE_URL=$(python3 -c 'import sys
from urllib.parse import urlsplit, parse_qs, quote
url = urlsplit(sys.argv[1])
query = parse_qs(url.query)
host = query.get("host", [""])[0]
if host.startswith("/"):
    user = url.username or "postgres"
    database = url.path.lstrip("/") or "postgres"
    port = query.get("port", [str(url.port or 5432)])[0]
    print(f"postgres://{quote(user)}@/{quote(database)}?host={host}&port={port}")
else:
    print(sys.argv[1])' "$url")
export GRAPHILE_DATABASE_URL

if [ -n "${BURNDOWN_OWN_CLUSTER:-}" ]; then
    # pg_stat_statements must be preloaded: set it, restart the throwaway
    # cluster with the options it was started with (postmaster.opts).
    dir=$(python3 -c 'import sys
from urllib.parse import urlsplit, parse_qs
print(parse_qs(urlsplit(sys.argv[1]).query)["host"][0])' "$url")
    bin=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -1)/bin
    as_owner=()
    [ "$(id -u)" = 0 ] && as_owner=(runuser -u postgres --)
    # Its settings exist once it is loaded; `track` is reloaded, not restarted.
    if psql -qX "$url" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null 2>&1 \
        && "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 -m fast restart >/dev/null \
        && psql -qX "$url" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
            -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 \
        && [ "$(psql -qXAt "$url" -c "SHOW pg_stat_statements.track")" = all ]; then
        echo "pg_stat_statements loaded (track = all)" >&2
    else
        echo "pg_stat_statements not available: statements per webhook not reported" >&2
    fi
fi

mkdir -p "$work/logs"
results=$work/results.jsonl
: > "$results"

# One run: system, setting, round. Appends its JSON line to $results.
run_one() {
    local system=$1 setting=$2 round=$3 name log json status=0
    name="r$round-$system-${setting// /-}"
    log=$work/logs/$name
    local limit=$((2 * RUN_TIMEOUT + 60))
    case $system in
        inbox-*)
            local backend=${system#inbox-}
            timeout --kill-after=10 "$limit" env \
                BURNDOWN="$backend@${setting#c=}" BURNDOWN_ROUNDS=1 BURNDOWN_FIRST_ROUND="$round" \
                BURNDOWN_WEBHOOKS="$WEBHOOKS" BURNDOWN_TIMEOUT_SECS="$RUN_TIMEOUT" \
                BURNDOWN_HANDLER="$HANDLER" ${BATCH:+BURNDOWN_BATCH="$BATCH"} \
                "$BURNDOWN_BIN" > "$log.out" 2> "$log.err" || status=$?
            ;;
        graphile-worker)
            local mode=${setting% c=*}
            timeout --kill-after=10 "$limit" env \
                NODE_PATH="$PWD/$work/node/node_modules" BURNDOWN_MODE="$mode" \
                BURNDOWN_CONCURRENCY="${setting#* c=}" BURNDOWN_ROUND="$round" \
                BURNDOWN_WEBHOOKS="$WEBHOOKS" BURNDOWN_TIMEOUT_SECS="$RUN_TIMEOUT" \
                BURNDOWN_HANDLER="$HANDLER" node benches/peers/graphile-burndown.js > "$log.out" 2> "$log.err" || status=$?
            ;;
    esac
    json=$(grep -m1 '^{"' "$log.out" || true)
    if [ -z "$json" ]; then
        # Killed by `timeout` (124, or 137 after --kill-after), or crashed.
        local what="\"timeout\": true"
        [ "$status" = 124 ] || [ "$status" = 137 ] || what="\"error\": \"exited with $status, no result\""
        json="{\"system\": \"$system\", \"setting\": \"$setting\", \"round\": $round, $what, \"handled_per_s\": null}"
        echo "  $name: no result (exit $status); see $log.err" >&2
        tail -5 "$log.err" >&2 || true
    fi
    echo "$json" >> "$results"
    python3 - "$json" >&2 <<'PY'
import json, sys
r = json.loads(sys.argv[1])
rate = r.get("handled_per_s")
done = f"{rate:.0f} handled/s in {r['secs']} s" if rate else r.get("error", "timeout")
if r.get("partial_per_s") is not None:
    done += f" ({r.get('handled')} handled, {r['partial_per_s']}/s)"
print(f"  round {r['round']}: {r['system']} {r['setting']}: {done}, "
      f"order violations {r.get('order_violations', '?')} (overlaps {r.get('overlaps', '?')}), "
      f"preload {r.get('preload_secs', '?')} s, load {r.get('load_average', '?')}")
PY
}

runs=()
for c in $INBOX_CONCURRENCY; do runs+=("inbox-postgres|c=$c"); done
for mode in $GRAPHILE_MODES; do
    for c in $GRAPHILE_CONCURRENCY; do runs+=("graphile-worker|$mode c=$c"); done
done
if [ "$SQLITE" != 0 ]; then
    for c in $INBOX_CONCURRENCY; do runs+=("inbox-sqlite-full|c=$c"); done
fi

pg_version=$(psql -qXAt "$url" -c "SHOW server_version" 2>/dev/null || echo "?")
graphile_version=$(node -p "require('$PWD/$work/node/node_modules/graphile-worker/package.json').version")
started=$(date +%s)
echo "$ROUNDS round(s) of ${#runs[@]} runs, $WEBHOOKS webhooks each; PostgreSQL $pg_version, graphile-worker $graphile_version, node $(node --version)" >&2
for round in $(seq 1 "$ROUNDS"); do
    order=("${runs[@]}")
    if [ $((round % 2)) = 0 ]; then
        order=()
        for ((i = ${#runs[@]} - 1; i >= 0; i--)); do order+=("${runs[i]}"); done
    fi
    for item in "${order[@]}"; do
        run_one "${item%%|*}" "${item#*|}" "$round"
    done
done

python3 - "$results" "$WEBHOOKS" "$ROUNDS" "$(nproc)" "$pg_version" "$graphile_version" "$(( $(date +%s) - started ))" "$HANDLER" <<'PY'
import json, statistics, sys

path, webhooks, rounds, cores, pg_version, graphile_version, took, handler = sys.argv[1:]
results = [json.loads(line) for line in open(path) if line.strip()]
order = []
for r in results:
    key = (r["system"], r["setting"])
    if key not in order:
        order.append(key)

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"

handler = {"yield": "no-op handler (yields once)", "return": "no-op handler (returns at once)"}.get(
    handler, f"handler sleeping {handler} ms")
print(f"\n{webhooks} webhooks over {int(webhooks) // 4} shipments (4 events each, in order), preloaded, {handler}; "
      f"{rounds} round(s), systems alternating; {cores} cores, PostgreSQL {pg_version} (one cluster for both), "
      f"graphile-worker {graphile_version}; {took} s in all. handled/s: median round (min–max); "
      "per webhook: medians over the drain (transactions less the benchmark's own polls; "
      "row updates of webhook_inbox or _private_jobs; statements counted by pg_stat_statements, track = all, BEGIN/COMMIT included).\n")
print("| system | setting | handled/s | order violations | overlapping calls | failed runs | transactions | row updates | statements | preload s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for system, setting in order:
    runs = [r for r in results if (r["system"], r["setting"]) == (system, setting)]
    rates = sorted(r["handled_per_s"] for r in runs if r.get("handled_per_s"))
    rate = f"**{statistics.median(rates):.0f}** ({rates[0]:.0f}–{rates[-1]:.0f})" if rates else "–"
    partial = sorted(r["partial_per_s"] for r in runs if r.get("partial_per_s") is not None)
    if partial:
        rate += f"; {len(partial)} unfinished: {statistics.median(partial):.0f}/s till given up"
    violations = sum(r.get("order_violations", 0) or 0 for r in runs)
    overlaps = sum(r.get("overlaps", 0) or 0 for r in runs)
    checked = sum(1 for r in runs if "order_violations" in r)
    timeouts = sum(1 for r in runs if r.get("timeout") or r.get("error"))
    updates = median([r.get("inbox_updates_per_webhook", r.get("jobs_updates_per_webhook")) for r in runs])
    print(f"| {system} | {setting} | {rate} | {violations}" + ("" if checked == len(runs) else f" ({len(runs) - checked} unchecked)")
          + f" | {overlaps} | {timeouts} | {fmt(median([r.get('xacts_per_webhook') for r in runs]))} | {fmt(updates)}"
          + f" | {fmt(median([r.get('statements_per_webhook') for r in runs]))}"
          + f" | {fmt(median([r.get('preload_secs') for r in runs]), 1)} |")

errors = [r for r in results if r.get("timeout") or r.get("error")]
if errors:
    print("\nFailed runs:\n")
    for r in errors:
        print(f"- round {r['round']}, {r['system']} {r['setting']}: {r.get('error', 'timeout')}")

first = [r for r in results if r.get("round") == min(x.get("round", 0) for x in results) and r.get("top_statements")]
if first:
    print("\nThe most frequent statements over the drain, first round (calls per webhook):")
    for r in first:
        print(f"\n{r['system']} {r['setting']} ({r['statements_per_webhook']} statements per webhook in all):\n")
        for s in [s for s in r["top_statements"] if s["per_webhook"] >= 0.001][:8]:
            print(f"- {s['per_webhook']:.3f}: `{s['query'].replace('`', chr(39))}`")
PY

# The inbox must keep each shipment's order, and finish.
python3 - "$results" <<'PY'
import json, sys
bad = [r for r in map(json.loads, open(sys.argv[1])) if r["system"].startswith("inbox")
       and (r.get("timeout") or r.get("error") or r.get("order_violations", 1) != 0)]
for r in bad:
    print(f"inbox run failed: {r['system']} {r['setting']} round {r['round']}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

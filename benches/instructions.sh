#!/usr/bin/env bash
# Instructions per request, counted by callgrind, and allocations per
# request, counted by the gauge's allocator: the bare route and each
# provider's verified route of an axum Router driven in-process
# (benches/gauge), the floor under any layer with this crate's API
# (floor: benches/common's `Floor`), and each provider's reference apart:
# one HMAC of what it signs (hmac-), and decoding the event's few fields
# (fields-).
# Each route runs with $LOW and $HIGH requests; the difference over
# $HIGH - $LOW is the figure, so start-up cancels out. Fails if a route
# exceeds its line in benches/instructions.budget by more than 5 % of
# instructions, or by one allocation.
# UPDATE=1 writes the budget from this run instead.
# Usage: bash benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LOW=${LOW:-100}
HIGH=${HIGH:-600}
BUDGET=benches/instructions.budget
TOLERANCE_PERCENT=5
PROVIDERS="kosmo kourier shipmondo goshiip"
ROUTES="bare floor $PROVIDERS"
for provider in $PROVIDERS; do ROUTES+=" hmac-$provider fields-$provider"; done
work=target/instructions
mkdir -p "$work"

if ! command -v valgrind >/dev/null; then
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
cargo build -q --release --manifest-path benches/gauge/Cargo.toml --target-dir target/gauge
binary=target/gauge/release/instruction-gauge

# $2, or a failure naming what $1 is if it is not a count.
number() {
    [[ $2 =~ ^[0-9]+$ ]] || { echo "no count of $1: got '$2'" >&2; exit 1; }
    echo "$2"
}

# Instructions of one run of ROUTE with COUNT requests.
count() {
    local out="$work/callgrind.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "$1" "$2" 2>"$out.log" || {
        cat "$out.log" >&2
        exit 1
    }
    number "instructions ($1)" "$(awk '/^(summary|totals):/ {print $2; exit}' "$out")"
}

# Allocations of one run of ROUTE with COUNT requests, as the gauge reports them.
allocations() {
    number "allocations ($1)" "$("$binary" "$1" "$2" 2>&1 >/dev/null | awk '$1 == "allocations" {print $2}')"
}

declare -A measured allocated
for route in $ROUTES; do
    low=$(count "$route" "$LOW")
    high=$(count "$route" "$HIGH")
    measured[$route]=$(( (high - low) / (HIGH - LOW) ))
    low=$(allocations "$route" "$LOW")
    high=$(allocations "$route" "$HIGH")
    allocated[$route]=$(( (high - low) / (HIGH - LOW) ))
done

if [ -n "${UPDATE:-}" ]; then
    {
        echo "# route, instructions and allocations per request (benches/instructions.sh);"
        echo "# CI fails past +$TOLERANCE_PERCENT % instructions or one more allocation."
        for route in $ROUTES; do echo "$route ${measured[$route]} ${allocated[$route]}"; done
    } > "$BUDGET"
    echo "wrote $BUDGET"
fi

bare=${measured[bare]}
echo "| route | instructions / request | budget | over bare | over bare and the reference (HMAC + fields) | allocations / request | budget |"
echo "|---|---|---|---|---|---|---|"
failed=0
for route in $ROUTES; do
    budget=$(awk -v r="$route" '$1 == r {print $2}' "$BUDGET" 2>/dev/null || true)
    budget_allocations=$(awk -v r="$route" '$1 == r {print $3}' "$BUDGET" 2>/dev/null || true)
    n=${measured[$route]}
    a=${allocated[$route]}
    over="" own=""
    case $route in
        bare|hmac-*|fields-*) ;;
        floor) over=$((n - bare)) ;;
        *) over=$((n - bare)); own=$((n - bare - ${measured[hmac-$route]} - ${measured[fields-$route]})) ;;
    esac
    echo "| $route | $n | ${budget:-none} | $over | $own | $a | ${budget_allocations:-none} |"
    if [ -z "${budget:-}" ] || [ -z "${budget_allocations:-}" ]; then
        echo "no budget for $route in $BUDGET" >&2
        failed=1
        continue
    fi
    if [ $((n * 100)) -gt $((budget * (100 + TOLERANCE_PERCENT))) ]; then
        echo "$route: $n instructions per request, over its budget of $budget by more than $TOLERANCE_PERCENT %" >&2
        failed=1
    fi
    if [ "$a" -gt "$budget_allocations" ]; then
        echo "$route: $a allocations per request, over its budget of $budget_allocations" >&2
        failed=1
    fi
done
exit $failed

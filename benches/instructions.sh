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
# instructions, or by one allocation, or if a provider's own instructions
# (its route's less bare, hmac- and fields-) exceed the budget's by 5 %.
# UPDATE=1 writes the budget from this run instead.
# Usage: bash benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LOW=${LOW:-100}
HIGH=${HIGH:-600}
BUDGET=benches/instructions.budget
TOLERANCE_PERCENT=5
PROVIDERS="kosmo kourier shipmondo goshiip easypost aftership sendcloud shippo shipbob shipengine"
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
        echo "# CI fails past +$TOLERANCE_PERCENT % instructions (of a route, or of a provider's own) or one more allocation."
        for route in $ROUTES; do echo "$route ${measured[$route]} ${allocated[$route]}"; done
    } > "$BUDGET"
    echo "wrote $BUDGET"
fi

declare -A budget budget_allocations
while read -r route instructions allocations; do
    [ -n "$route" ] && budget[$route]=$instructions budget_allocations[$route]=$allocations
done < <(grep -v '^#' "$BUDGET" 2>/dev/null || true)
for route in $ROUTES; do
    [[ ${budget[$route]:-} =~ ^[0-9]+$ && ${budget_allocations[$route]:-} =~ ^[0-9]+$ ]] || {
        echo "no budget for $route in $BUDGET (instructions and allocations)" >&2
        exit 1
    }
done

# A provider's own instructions, its route's less the bare route's and its
# reference's, from $1 (measured or budget).
own_of() {
    local -n counts=$1
    echo $((${counts[$2]} - ${counts[bare]} - ${counts[hmac-$2]} - ${counts[fields-$2]}))
}

echo "| route | instructions / request | budget | over bare | own: over bare and the reference (HMAC + fields) | own budget | allocations / request | budget |"
echo "|---|---|---|---|---|---|---|---|"
failed=0
for route in $ROUTES; do
    n=${measured[$route]} a=${allocated[$route]}
    limit=${budget[$route]} limit_allocations=${budget_allocations[$route]}
    over="" own="" own_limit=""
    case $route in
        bare|hmac-*|fields-*) ;;
        floor) over=$((n - ${measured[bare]})) ;;
        *) over=$((n - ${measured[bare]})) own=$(own_of measured "$route") own_limit=$(own_of budget "$route") ;;
    esac
    echo "| $route | $n | $limit | $over | $own | $own_limit | $a | $limit_allocations |"
    if [ $((n * 100)) -gt $((limit * (100 + TOLERANCE_PERCENT))) ]; then
        echo "$route: $n instructions per request, over its budget of $limit by more than $TOLERANCE_PERCENT %" >&2
        failed=1
    fi
    # The hashing dwarfs a layer's own work: 5 % of a route's count would let
    # its own cost grow by a third unseen. (Shipmondo's is below zero: it
    # unescapes its payload in place, the reference through a growing String.)
    if [ -n "$own" ] && [ $(((own - own_limit) * 100)) -gt $((${own_limit#-} * TOLERANCE_PERCENT)) ]; then
        echo "$route: $own instructions of its own per request, over its budget of $own_limit by more than $TOLERANCE_PERCENT %" >&2
        failed=1
    fi
    if [ "$a" -gt "$limit_allocations" ]; then
        echo "$route: $a allocations per request, over its budget of $limit_allocations" >&2
        failed=1
    fi
done
exit $failed

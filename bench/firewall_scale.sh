#!/usr/bin/env bash
# Issue 3, item 10: how pont's firewall grows with the number of networks.
# For each backend and each N in COUNTS: make N networks, then time one more
# `pont network create` and its `pont network rm` (median of REPEAT runs),
# and count pont's rules and set elements.
#
# Everything happens in a throwaway network namespace (pont-t-bench-PID-...)
# that the script deletes on exit; the machine's own namespace is not touched.
# Needs root.  Usage: bench/firewall_scale.sh [PONT_BINARY]
#   env COUNTS="1 10 100" REPEAT=5
set -euo pipefail

PONT=$(realpath "${1:-target/debug/pont}")
COUNTS=${COUNTS:-"1 10 100"}
REPEAT=${REPEAT:-5}
NS=""
ROOT=""

cleanup() {
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null || true
    [ -n "$ROOT" ] && rm -rf "$ROOT"
    NS="" ROOT=""
}
trap cleanup EXIT

in_ns() { ip netns exec "$NS" "$@"; }
pont() { in_ns env PONT_ROOT="$ROOT" PONT_RUN_DIR="$ROOT/run" PONT_FIREWALL="$BACKEND" "$PONT" "$@"; }

now_us() { echo $(( $(date +%s%N) / 1000 )); }

# Median of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Rules and set elements pont owns, as the backend lists them.
count_rules() {
    if [ "$BACKEND" = nftables ]; then
        local listing
        listing=$(in_ns nft list table inet pont; in_ns nft list table bridge pont)
        local rules elements
        rules=$(echo "$listing" | grep -cE '^\s+(ip|iif|oif|meta|ct|jump|counter)' || true)
        elements=$(echo "$listing" | grep -o 'comment "' | wc -l)
        echo "$rules rules, $elements set elements"
    else
        local ipt eb
        ipt=$(in_ns iptables-save | grep -cE '^-A .*PONT-' || true)
        eb=$(in_ns ebtables-save | grep -cE '^-A .*PONT-' || true)
        echo "$((ipt + eb)) rules"
    fi
}

printf '%-9s %5s %12s %12s  %s\n' backend N "create (ms)" "rm (ms)" "pont's rules with N networks"
for BACKEND in nftables iptables; do
    for n in $COUNTS; do
        NS="pont-t-bench-$$-$BACKEND-$n"
        ROOT=$(mktemp -d "/tmp/pont-t-bench-$$-XXXX")
        ip netns add "$NS"
        in_ns ip link set lo up
        for i in $(seq 1 "$n"); do
            pont network create "net$i" --subnet "10.$((100 + i / 250)).$((i % 250)).0/24" >/dev/null
        done
        rules=$(count_rules)
        creates="" removals=""
        for _ in $(seq 1 "$REPEAT"); do
            t0=$(now_us)
            pont network create extra --subnet 10.99.0.0/24 >/dev/null
            t1=$(now_us)
            pont network rm extra >/dev/null
            t2=$(now_us)
            creates+="$(( (t1 - t0) / 1000 ))"$'\n'
            removals+="$(( (t2 - t1) / 1000 ))"$'\n'
        done
        printf '%-9s %5s %12s %12s  %s\n' "$BACKEND" "$n" \
            "$(printf '%s' "$creates" | median)" "$(printf '%s' "$removals" | median)" "$rules"
        cleanup
    done
done

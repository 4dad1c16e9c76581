#!/usr/bin/env bash
# A tour of pont in a throwaway sandbox: networks, containers, traffic
# between them, masqueraded traffic to a WAN host, and a clean teardown.
#
# Nothing touches this machine's own network: pont runs inside a sandbox
# host namespace that reaches a LAN neighbour and, through a router, a WAN
# host, all in namespaces this script makes and removes again on exit.
#
#   WAN host 203.0.113.10
#        |
#   router 203.0.113.1 | 192.0.2.1   (forwarding, no NAT)
#        |
#   LAN switch (bridge lan0) --+-- neighbour 192.0.2.3
#                              +-- sandbox host 192.0.2.2 on uplink0: pont runs here
#
# Usage: demo/run.sh [--topology-only]
#   --topology-only  build the sandbox, ping across it, tear it down (no pont needed)
# Environment: PONT_SKIP_INSTALL=1 skips scripts/install-deps.sh;
#   PONT_BIN=/path/to/pont uses that binary and skips `cargo build --release`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PONT_BIN=/path/to/pont runs that binary instead of building target/release/pont.
PONT_BIN_GIVEN=${PONT_BIN:+1}
PONT_BIN=${PONT_BIN:-$REPO/target/release/pont}

TOPOLOGY_ONLY=0
case "${1:-}" in
    "") ;;
    --topology-only) TOPOLOGY_ONLY=1 ;;
    *) echo "usage: $0 [--topology-only]" >&2; exit 2 ;;
esac

# Every namespace name is unique to this run (the script's pid).
STEM=pont-demo-$$
NS_HOST=$STEM-host
NS_LAN=$STEM-lan
NS_NEIGH=$STEM-neigh
NS_ROUTER=$STEM-router
NS_WAN=$STEM-wan

CREATED_NS=()   # namespaces this run made, removed on exit
STARTED_PIDS=() # processes this run started directly, killed on exit
WORK=""         # temp dir: PONT_ROOT, PONT_RUN_DIR, logs

say() { printf '\n==> %s\n' "$*"; }
show() { printf '    $ %s\n' "$*"; }
run() { show "$*"; "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

# pont inside the sandbox host, with the demo's own state root.
pont_raw() {
    ip netns exec "$NS_HOST" env PONT_ROOT="$WORK/root" PONT_RUN_DIR="$WORK/run" \
        "$PONT_BIN" "$@"
}
pont() { show "pont $*"; pont_raw "$@"; }

# ---------------------------------------------------------------------------
# cleanup: runs on every exit, also after a failure or Ctrl-C
# ---------------------------------------------------------------------------

# Pids of the processes in a namespace and of all their descendants (a
# container's init lives in a namespace of its own, under pont's monitor).
ns_pids_with_descendants() {
    local roots
    roots=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ' || true)
    [[ -n "$roots" ]] || return 0
    ps -e -o pid=,ppid= | awk -v roots="$roots" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
        { parent[$1] = $2 }
        END {
            do {
                grew = 0
                for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 }
            } while (grew)
            for (p in keep) print p
        }'
}

cleanup() {
    local rc=$? pid ns ids
    set +e
    trap - EXIT INT TERM
    if [[ -n "$WORK" && -x "$PONT_BIN" && " ${CREATED_NS[*]} " == *" $NS_HOST "* ]]; then
        ids=$(pont_raw ps -a -q 2>/dev/null)
        # shellcheck disable=SC2086 # one id per word
        [[ -n "$ids" ]] && pont_raw rm -f $ids >/dev/null 2>&1
    fi
    for pid in "${STARTED_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ((i = ${#CREATED_NS[@]} - 1; i >= 0; i--)); do
        ns=${CREATED_NS[i]}
        for pid in $(ns_pids_with_descendants "$ns"); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    if ((${#CREATED_NS[@]} > 0)); then
        echo
        echo "==> sandbox removed (${#CREATED_NS[@]} namespaces)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# the sandbox topology
# ---------------------------------------------------------------------------

add_netns() {
    ip netns add "$1"
    CREATED_NS+=("$1")
}

build_topology() {
    say "building the sandbox ($STEM-*)"
    local ns
    for ns in "$NS_HOST" "$NS_LAN" "$NS_NEIGH" "$NS_ROUTER" "$NS_WAN"; do
        add_netns "$ns"
    done
    # No duplicate address detection in the host: addresses are final at once.
    ip netns exec "$NS_HOST" sysctl -q -w net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0

    # The LAN switch makes every veth and puts the far end straight into its
    # namespace, so no link ever appears in this machine's own namespace.
    ip -n "$NS_LAN" -batch - <<EOF
link set lo up
link add lan0 type bridge
link set lan0 up
link add p-host type veth peer name uplink0 netns $NS_HOST
link set p-host master lan0 up
link add p-neigh type veth peer name eth0 netns $NS_NEIGH
link set p-neigh master lan0 up
link add p-router type veth peer name eth-lan netns $NS_ROUTER
link set p-router master lan0 up
EOF
    ip -n "$NS_HOST" -batch - <<EOF
link set lo up
link set uplink0 up
addr add 192.0.2.2/24 dev uplink0
route add default via 192.0.2.1
EOF
    ip -n "$NS_NEIGH" -batch - <<EOF
link set lo up
link set eth0 up
addr add 192.0.2.3/24 dev eth0
route add default via 192.0.2.1
EOF
    ip -n "$NS_ROUTER" -batch - <<EOF
link set lo up
link set eth-lan up
addr add 192.0.2.1/24 dev eth-lan
link add eth-wan type veth peer name eth0 netns $NS_WAN
link set eth-wan up
addr add 203.0.113.1/24 dev eth-wan
EOF
    ip -n "$NS_WAN" -batch - <<EOF
link set lo up
link set eth0 up
addr add 203.0.113.10/24 dev eth0
route add default via 203.0.113.1
EOF
    # Forwarding on the router only, set from inside its namespace.
    ip netns exec "$NS_ROUTER" sysctl -q -w net.ipv4.ip_forward=1

    echo "    host    $NS_HOST    uplink0 192.0.2.2/24, default via 192.0.2.1"
    echo "    lan     $NS_LAN     bridge lan0"
    echo "    neigh   $NS_NEIGH   eth0 192.0.2.3/24"
    echo "    router  $NS_ROUTER  eth-lan 192.0.2.1/24, eth-wan 203.0.113.1/24, forwarding"
    echo "    wan     $NS_WAN     eth0 203.0.113.10/24"
}

ping_from() {
    local ns=$1 addr=$2 label=$3
    if ip netns exec "$ns" ping -n -q -c1 -W2 "$addr" >/dev/null; then
        echo "    ok    $label"
    else
        echo "    FAIL  $label" >&2
        return 1
    fi
}

check_topology() {
    say "pinging across the sandbox"
    local failed=0
    ping_from "$NS_HOST" 192.0.2.3 "host -> LAN neighbour 192.0.2.3" || failed=1
    ping_from "$NS_NEIGH" 192.0.2.2 "LAN neighbour -> host 192.0.2.2" || failed=1
    ping_from "$NS_HOST" 192.0.2.1 "host -> router 192.0.2.1" || failed=1
    ping_from "$NS_HOST" 203.0.113.10 "host -> WAN host 203.0.113.10 (routed)" || failed=1
    ping_from "$NS_WAN" 192.0.2.2 "WAN host -> host 192.0.2.2 (routed, no NAT)" || failed=1
    ((failed == 0)) || die "the sandbox topology does not route"
}

# ---------------------------------------------------------------------------
# helpers for the tour
# ---------------------------------------------------------------------------

# The first address of `pont inspect` JSON (read from stdin) inside SUBNET,
# whatever the exact layout of the JSON; keys naming a gateway are skipped.
address_in_subnet() {
    python3 -c '
import ipaddress, json, sys
subnet = ipaddress.ip_network(sys.argv[1])
def walk(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, key)
    elif isinstance(node, str) and "gateway" not in key.lower() and "gw" not in key.lower():
        yield node
try:
    doc = json.load(sys.stdin)
except ValueError as e:
    sys.exit("pont inspect did not print JSON: %s" % e)
for text in walk(doc):
    try:
        ip = ipaddress.ip_interface(text).ip
    except ValueError:
        continue
    if ip in subnet:
        print(ip)
        sys.exit(0)
sys.exit("no address in %s found in the inspect output" % subnet)
' "$1"
}

# An HTTP GET for inside a container: curl, or python3 where curl is missing.
if command -v curl >/dev/null; then
    HTTP_GET=(curl -sf --max-time 5)
else
    HTTP_GET=(python3 -c
        'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())')
fi

# Polls until COMMAND succeeds, at most SECONDS seconds.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

[[ $EUID -eq 0 ]] || die "run as root: the demo creates network namespaces"

if [[ "${PONT_SKIP_INSTALL:-0}" != 1 ]]; then
    say "installing dependencies (PONT_SKIP_INSTALL=1 skips this)"
    run bash "$REPO/scripts/install-deps.sh"
fi
if [[ -d "$HOME/.cargo/bin" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

if ((TOPOLOGY_ONLY)); then
    build_topology
    check_topology
    exit 0
fi

if [[ -z "$PONT_BIN_GIVEN" ]]; then
    say "building pont"
    (cd "$REPO" && run cargo build --release)
fi
[[ -x "$PONT_BIN" ]] || die "no pont binary at $PONT_BIN"

WORK=$(mktemp -d -t pont-demo-XXXXXX)
mkdir "$WORK/root" "$WORK/run"
build_topology
check_topology
echo "    pont state root: $WORK/root"

# 1. networks -----------------------------------------------------------------
say "creating network frontend (10.10.1.0/24)"
pont network create frontend --subnet 10.10.1.0/24
say "creating network backend (subnet chosen by pont)"
pont network create backend
say "listing networks"
pont network ls

# 2. containers ---------------------------------------------------------------
say "starting containers: web (HTTP server) and web2 on frontend, db on backend"
pont run -d --name web --network frontend -- python3 -m http.server 80
pont run -d --name db --network backend -- sleep 1000
pont run -d --name web2 --network frontend -- sleep 1000
pont ps

# 3. traffic inside a network -------------------------------------------------
say "finding web's address"
show "pont inspect web"
WEB_IP=$(pont_raw inspect web | address_in_subnet 10.10.1.0/24)
echo "    web is at $WEB_IP"

say "web2 pings web across frontend"
pont exec web2 -- ping -c1 -W1 "$WEB_IP"

say "web2 fetches web's page over HTTP"
# The server may need a moment to start listening.
wait_for 10 pont_raw exec web2 -- "${HTTP_GET[@]}" "http://$WEB_IP/" ||
    die "web's HTTP server did not answer within 10 s"
pont exec web2 -- "${HTTP_GET[@]}" "http://$WEB_IP/" | head -n 5
echo "    ..."

# 4. out to the WAN, masqueraded ----------------------------------------------
say "starting an HTTP server on the WAN host (203.0.113.10:8080)"
show "ip netns exec $NS_WAN python3 -m http.server 8080 --bind 203.0.113.10 &"
ip netns exec "$NS_WAN" python3 -u -m http.server 8080 --bind 203.0.113.10 \
    >"$WORK/wan-http.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for 10 ip netns exec "$NS_WAN" bash -c 'exec 3<>/dev/tcp/203.0.113.10/8080' ||
    die "the WAN HTTP server did not start: $(cat "$WORK/wan-http.log")"

say "db reaches the WAN host through the sandbox host and the router"
pont exec db -- ping -c1 -W1 203.0.113.10
pont exec db -- "${HTTP_GET[@]}" "http://203.0.113.10:8080/" >/dev/null

say "the WAN host saw the sandbox host's address (masquerade), not db's"
show "grep 'GET / ' $WORK/wan-http.log"
# http.server logs one line per request: "CLIENT - - [date] "GET / ..." 200 -".
grep 'GET / ' "$WORK/wan-http.log" | tail -n 1 | sed 's/^/    /'
grep 'GET / ' "$WORK/wan-http.log" | tail -n 1 | grep -q '^192\.0\.2\.2 ' ||
    die "the WAN host did not see 192.0.2.2 as the source"
echo "    ok: source address 192.0.2.2"

# 5. a published port, added to a running container ---------------------------
say "publishing web's port 80 on the host's port 8080 (while web runs)"
pont port add web 8080:80
pont port web
pont ps

say "the LAN neighbour (192.0.2.3) fetches http://192.0.2.2:8080/"
wait_for 10 ip netns exec "$NS_NEIGH" "${HTTP_GET[@]}" "http://192.0.2.2:8080/" ||
    die "the published port did not answer the LAN neighbour"
run ip netns exec "$NS_NEIGH" "${HTTP_GET[@]}" "http://192.0.2.2:8080/" | head -n 3
echo "    ..."

say "web saw the neighbour's real address (no masquerade on the way in)"
pont_raw logs web | grep 'GET / ' | tail -n 1 | sed 's/^/    /'
pont_raw logs web | grep 'GET / ' | tail -n 1 | grep -q '^192\.0\.2\.3 ' ||
    die "web did not see 192.0.2.3 as the client"
echo "    ok: client address 192.0.2.3"

say "db, on the other network, cannot reach web's address directly (isolation)"
if pont_raw exec db -- timeout 3 bash -c "exec 3<>/dev/tcp/$WEB_IP/80" 2>/dev/null; then
    die "db reached web across networks"
fi
echo "    ok: refused"

say "unpublishing the port: the neighbour is refused at once"
pont port rm web 8080:80
if ip netns exec "$NS_NEIGH" timeout 3 bash -c 'exec 3<>/dev/tcp/192.0.2.2/8080' 2>/dev/null; then
    die "port 8080 still answers after port rm"
fi
echo "    ok: nothing listens on 192.0.2.2:8080 any more"

say "pont's firewall rules, as nft lists them"
pont firewall show | head -n 40
echo "    ..."

# 6. inspect, logs, teardown --------------------------------------------------
say "inspecting web"
pont inspect web
say "web's logs"
pont logs web
say "stopping and removing the containers"
for c in web web2 db; do
    pont stop "$c"
done
for c in web web2 db; do
    pont rm "$c"
done
say "removing the networks"
pont network rm frontend
pont network rm backend

say "the sandbox host is back to its uplink only"
run ip -n "$NS_HOST" -br link
links=$(ip -n "$NS_HOST" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort)
[[ "$links" == $'lo\nuplink0' ]] || die "links left in the sandbox host: $links"
echo "    ok: only lo and uplink0"

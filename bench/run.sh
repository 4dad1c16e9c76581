#!/usr/bin/env bash
# pont's benchmarks side by side with netavark and the CNI plugins.
#
#   sudo ./bench/run.sh                  # the full run (about 15 minutes on 2 cores)
#   sudo ./bench/run.sh --containers 1000 --sections latency --only pont-nftables,netavark
#   sudo ./bench/run.sh --quick --no-write   # checks the harness in about a minute
#
# Installs the peers (netavark, aardvark-dns, containernetworking-plugins) and
# the load tools (iperf3, wrk), builds pont with --release, then runs
# bench/bench.py. Everything runs in throwaway network namespaces named
# pont-b-<this script's pid>-*, removed on exit even when a step fails; the
# machine's own network namespace is never changed. Results: the tables on
# stdout, docs/benchmarks.md and docs/benchmarks.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ $EUID -ne 0 ]]; then
    echo "bench: run as root (sudo ./bench/run.sh): it makes network namespaces" >&2
    exit 1
fi
if [[ -d "$HOME/.cargo/bin" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

RUN_ID=$$

# Backstop for a run killed before bench.py could clean up: remove this run's
# namespaces and what runs in them (everything there was started by this run).
cleanup() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^pont-b-${RUN_ID}-" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            kill -9 "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Debian's names (checked with apt-cache): the peers and the load tools.
PACKAGES=(netavark aardvark-dns containernetworking-plugins iperf3 wrk
    nftables iptables conntrack iproute2 util-linux strace python3)
missing=()
for pkg in "${PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    echo "bench: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for tool in /usr/lib/podman/netavark /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap; do
    [[ -x $tool ]] || { echo "bench: $tool missing after install" >&2; exit 1; }
done

cargo build --release -q -p pont-cli -p pont-bench

python3 bench/bench.py --run-id "$RUN_ID" "$@"

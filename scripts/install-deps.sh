#!/usr/bin/env bash
# Installs what pont's build, tests and demo need on Debian 12 (bookworm).
# Idempotent: asks apt for nothing when everything is already installed.
set -euo pipefail

# Tools the tests and the demo shell out to, and what builds C for -sys crates.
PACKAGES=(
    iproute2        # ip: namespaces, links, addresses, routes; ss
    iptables        # iptables-save, the iptables firewall backend
    nftables        # nft, the default firewall backend
    iputils-ping    # ping
    netcat-openbsd  # nc
    curl
    procps          # sysctl, kill, ps, pgrep
    conntrack       # tests only: they read conntrack -L (pont itself uses ctnetlink)
    python3         # test servers and clients, JSON in the demo
    busybox-static  # a static busybox for minimal container roots
    build-essential
    pkg-config
    shellcheck      # .ci/run lints the shell scripts
)

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
    if [[ $EUID -ne 0 ]]; then
        echo "install-deps: missing ${missing[*]}; run this script as root to install them" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "install-deps: all ${#PACKAGES[@]} packages present"
fi

# Cargo: the machine's rustup toolchain lives in ~/.cargo/bin, which a
# non-login shell may not have on its PATH.
if [[ -d "$HOME/.cargo/bin" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    cat >&2 <<'MSG'
install-deps: cargo not found.
  pont needs Rust 1.85 or newer. Get it with rustup (https://rustup.rs):
      curl --proto '=https' -sSf https://sh.rustup.rs | sh
  or with Debian's package (older than 1.85 on bookworm; use backports or rustup
  if the build then complains about the Rust version):
      apt-get install cargo
  Installing Debian's cargo now as a fallback.
MSG
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q cargo
fi
echo "install-deps: $(cargo --version)"
for tool in fmt clippy; do
    if ! cargo "$tool" --version >/dev/null 2>&1; then
        echo "install-deps: cargo $tool missing; with rustup: rustup component add ${tool/fmt/rustfmt}" >&2
        exit 1
    fi
done

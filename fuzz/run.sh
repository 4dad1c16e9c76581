#!/usr/bin/env bash
# Run every fuzz target (or those named) for a bounded time (default 60 s
# each; FUZZ_SECS=N to change). Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Not part of CI. The corpus grows in
# fuzz/corpus/TARGET (not committed), starting from fuzz/seeds/TARGET.
# Crashes land in fuzz/artifacts/TARGET/; keep each one as a regression test
# next to the code it broke.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs="${FUZZ_SECS:-60}"
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(port_spec addresses names state_record)
fi
failed=()
for target in "${targets[@]}"; do
    echo "==> $target for ${secs}s"
    mkdir -p "corpus/$target"
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=10; then
        failed+=("$target")
    fi
done
if ((${#failed[@]} > 0)); then
    echo "crashes in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi

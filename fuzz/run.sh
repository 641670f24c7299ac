#!/usr/bin/env bash
# Runs one fuzz target for a bounded time: fuzz/run.sh TARGET SECONDS [libFuzzer options...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). `-s none`: this stable toolchain has no
# AddressSanitizer; libFuzzer's coverage and Rust's own checks (bounds, overflow with
# debug assertions, panics) still catch what matters in safe code. New inputs go to
# corpus/TARGET (only the committed seed-* files are tracked), crashes to artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
shift 2
exec cargo fuzz run -s none "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 "$@"

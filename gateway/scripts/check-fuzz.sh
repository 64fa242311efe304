#!/usr/bin/env bash
# Builds gateway/fuzz (the cargo-fuzz project) on the stable toolchain, proving the fuzz
# targets compile; CI can call this. With FUZZ_SECONDS=N it also runs `sbe_decode` and
# `fix_decode` for N seconds each with libFuzzer's coverage instrumentation (stable rustc, no sanitizer; cargo-fuzz on
# nightly adds AddressSanitizer).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
manifest="$root/gateway/fuzz/Cargo.toml"
target_dir="$root/target/fuzz"

if [[ -z "${FUZZ_SECONDS:-}" ]]; then
    cargo build --quiet --manifest-path "$manifest" --target-dir "$target_dir" --bins
    exit 0
fi

export RUSTFLAGS="${RUSTFLAGS:-} -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions"
# An explicit --target keeps the instrumentation away from build scripts (as cargo-fuzz does).
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --quiet --release --manifest-path "$manifest" --target-dir "$target_dir/cov" --target "$host" --bins
for target in sbe_decode fix_decode; do
    corpus="$root/gateway/fuzz/corpus/$target"
    mkdir -p "$corpus"
    "$target_dir/cov/$host/release/$target" -max_total_time="$FUZZ_SECONDS" -max_len=4096 "$corpus"
done

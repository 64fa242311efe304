#!/usr/bin/env bash
# QuickFIX's own FIX 4.4 acceptor acceptance tests (gateway/tests/quickfix-at/, copied unchanged
# from quickfix/quickfix with its LICENSE) run by QuickFIX's own Ruby runner against `sable run`
# configured as QuickFIX configures its acceptor (gateway/tests/quickfix-at/sable-at.toml).
#
# Two runs, each against a fresh appliance:
#   1. the 44 tests that need no application behaviour -- any failure fails this script;
#   2. the 15 that observe the session through QuickFIX's echo application (sable is not an
#      echo application) -- their result is printed, never fatal.
# Each run prints the runner's own result line ("44 tests passed" / "FAILED n out of 44 tests").
# The runner has no read timeout, so every run is bounded by `timeout`.
#
# Needs Debian's `ruby` (gateway/scripts/install-test-deps.sh installs it). Builds `sable` with
# cargo unless SABLE_BIN names a binary. RUN_SECONDS bounds each run (default 240).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
suite="$root/gateway/tests/quickfix-at"
config="$suite/sable-at.toml"
run_seconds="${RUN_SECONDS:-240}"

# The tests that need QuickFIX's echo application (its test/README and the suite's README).
echo_tests=(14e_IncorrectEnumValue 15_HeaderAndBodyFieldsOrderedDifferently
    19a_PossResendMessageThatHAsAlreadyBeenSent 19b_PossResendMessageThatHasNotBeenSent
    20_SimultaneousResendRequest 21_RepeatingGroupSpecifierWithValueOfZero 2d_GarbledMessage
    2f_PossDupOrigSendingTimeTooHigh 2g_PossDupNoOrigSendingTime 2m_BodyLengthValueNotCorrect
    2r_UnregisteredMsgType 3b_InvalidChecksum 3c_GarbledMessage 8_AdminAndApplicationMessages
    8_OnlyApplicationMessages)

if ! command -v ruby >/dev/null 2>&1; then
    echo "quickfix-at: ruby not found (bash gateway/scripts/install-test-deps.sh installs it)" >&2
    exit 1
fi
if [[ -z "${SABLE_BIN:-}" ]]; then
    cargo build --quiet -p sable-gateway --bin sable
    target="${CARGO_TARGET_DIR:-$root/target}"
    case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
    SABLE_BIN="$target/debug/sable"
fi

work="$(mktemp -d)"
sable_pid=""
cleanup() {
    if [[ -n "$sable_pid" ]]; then
        kill "$sable_pid" 2>/dev/null || true
        wait "$sable_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a fresh appliance in $work/$1 and sets $port to its FIX port.
start_sable() {
    local dir="$work/$1"
    mkdir -p "$dir"
    (cd "$dir" && exec "$SABLE_BIN" run --config "$config" >"$dir/sable.log" 2>&1) &
    sable_pid=$!
    port=""
    for _ in $(seq 1 300); do
        port="$(sed -n 's/^sable: FIX listening on .*:\([0-9]*\)$/\1/p' "$dir/sable.log")"
        [[ -n "$port" ]] && return 0
        if ! kill -0 "$sable_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    cat "$dir/sable.log" >&2
    echo "quickfix-at: sable did not start" >&2
    exit 1
}

stop_sable() {
    kill "$sable_pid" 2>/dev/null || true
    wait "$sable_pid" 2>/dev/null || true
    sable_pid=""
}

# Runs the runner over the given .def files; prints its output; returns its status (124 on timeout).
run_suite() {
    local name="$1"
    shift
    start_sable "$name"
    local status=0
    # The runner reads definitions/fields.fmt relative to its working directory.
    (cd "$suite/test" && timeout "$run_seconds" ruby -I. Runner.rb 127.0.0.1 "$port" "$@") \
        >"$work/$name.out" 2>&1 || status=$?
    stop_sable
    cat "$work/$name.out"
    if [[ $status -eq 124 ]]; then
        echo "quickfix-at: $name: timed out after ${run_seconds}s in $(grep '^definitions/' "$work/$name.out" | tail -1)"
    fi
    return $status
}

is_echo() {
    local t
    for t in "${echo_tests[@]}"; do [[ "$1" == "$t" ]] && return 0; done
    return 1
}

session_tests=()
echo_defs=()
for def in "$suite"/test/definitions/server/fix44/*.def; do
    rel="definitions/server/fix44/$(basename "$def")"
    if is_echo "$(basename "$def" .def)"; then echo_defs+=("$rel"); else session_tests+=("$rel"); fi
done

echo "== QuickFIX acceptance tests: ${#session_tests[@]} session-layer tests (must pass)"
session_status=0
run_suite session "${session_tests[@]}" || session_status=$?
session_line="$(tail -1 "$work/session.out")"

echo "== QuickFIX acceptance tests: ${#echo_defs[@]} tests that need QuickFIX's echo application (informational)"
echo_status=0
run_suite echo "${echo_defs[@]}" || echo_status=$?
echo_line="$(tail -1 "$work/echo.out")"

# The runner prints each test's path, then, for a failure, indented lines saying why.
passing_echo="$(awk '/^definitions\// { if (name != "" && ok) print name; name = $0; ok = 1; next }
    /^[[:space:]]/ { ok = 0 } END { if (name != "" && ok) print name }' "$work/echo.out" |
    sed 's|.*/||; s|\.def$||' | tr '\n' ' ')"
echo "quickfix-at: session-layer tests: $session_line"
echo "quickfix-at: echo-application tests (not required): $echo_line; passing: ${passing_echo:-none}"
if [[ $session_status -ne 0 || "$session_line" != "${#session_tests[@]} tests passed" ]]; then
    echo "quickfix-at: FAILED" >&2
    exit 1
fi

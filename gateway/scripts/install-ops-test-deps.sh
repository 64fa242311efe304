#!/usr/bin/env bash
# Installs what the operations tests (gateway/tests/operations.rs) need beyond cargo:
# `systemd-analyze` (Debian's `systemd` package) with `security --offline`, which verifies the
# units in systemd/ and scores their sandboxing. Idempotent: installs nothing that is there and
# runs `apt-get update` only when something is missing. Quiet on success, loud on failure.
# `.ci/test` runs it beside install-test-deps.sh.
set -euo pipefail

have_analyze() {
    command -v systemd-analyze >/dev/null 2>&1 &&
        systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'
}

if have_analyze; then
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-ops-test-deps: need root to apt-get install systemd" >&2
        exit 1
    fi
    sudo=(sudo)
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends systemd; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-ops-test-deps: apt-get install systemd failed" >&2
    exit 1
fi
if ! have_analyze; then
    echo "install-ops-test-deps: systemd installed but 'systemd-analyze security --offline' is missing (systemd >= 250 needed)" >&2
    exit 1
fi

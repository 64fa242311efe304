#!/usr/bin/env bash
# Installs what the observability tests (gateway/tests/observability.rs) need beyond cargo:
# `promtool` (Debian's `prometheus` package) to check /metrics output and the alert rules in
# docs/observability/, and headless `chromium` to load the live dashboard and keep a
# screenshot. Idempotent: runs `apt-get update` and installs only when something is missing.
# Quiet on success, loud on failure. `.ci/test` runs it beside the other install scripts.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-obs-test-deps: need root to apt-get install ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-obs-test-deps: apt-get install ${missing[*]} failed" >&2
    exit 1
fi
for tool in promtool chromium; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-obs-test-deps: $tool is still missing after installing ${missing[*]}" >&2
        exit 1
    fi
done

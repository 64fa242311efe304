#!/usr/bin/env bash
# What the session-security tests need beyond cargo: `openssl` (Debian), the independent TLS
# client (`openssl s_client`) and certificate maker (`openssl req`, `openssl x509`) of
# gateway/tests/tls.rs.
set -euo pipefail
if command -v openssl >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
$SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
command -v openssl >/dev/null

#!/usr/bin/env bash
# Installs what sable-gateway's tests need beyond cargo: the Python `sbe` package (0.4.x), the
# independent SBE implementation that gateway/tests/sbe_schema.rs checks the codec against.
# Idempotent (does nothing when a 0.4.x is importable), quiet on success, loud on failure.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
WANT='sbe>=0.4,<0.5'

have_sbe() {
    "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata, sys
import sbe  # noqa: F401
sys.exit(0 if importlib.metadata.version("sbe").startswith("0.4.") else 1)
PY
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install-test-deps: $PYTHON not found; install Python 3 (e.g. apt-get install python3 python3-pip)" >&2
    exit 1
fi

if have_sbe; then
    exit 0
fi

if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "install-test-deps: pip is not available for $PYTHON (e.g. apt-get install python3-pip)" >&2
    exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
pip_install() {
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@" "$WANT" >"$log" 2>&1
}
# A distribution-managed Python (PEP 668) refuses plain installs; fall back to a user install.
if ! pip_install && ! pip_install --user --break-system-packages; then
    cat "$log" >&2
    echo "install-test-deps: pip install '$WANT' failed" >&2
    exit 1
fi

if ! have_sbe; then
    echo "install-test-deps: '$WANT' installed but 'import sbe' still fails for $PYTHON" >&2
    exit 1
fi

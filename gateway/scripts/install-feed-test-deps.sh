#!/usr/bin/env bash
# Installs what gateway/tests/feed.rs needs beyond cargo: PyPI `itchfeed` (1.6.x, module `itch`),
# an ITCH 5.0 parser sable does not own, which decodes every message block of captured feed
# datagrams (gateway/tests/feed_support/itch_decode.py). Installed the way install-test-deps.sh
# installs the Python `sbe` package: pip, falling back to a user install on a PEP 668 Python.
# Idempotent, quiet on success, loud on failure. `.ci/test` runs it before `cargo test`.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
WANT='itchfeed>=1.6,<1.7'

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

have_itchfeed() {
    "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata, sys
from itch.parser import MessageParser  # noqa: F401
sys.exit(0 if importlib.metadata.version("itchfeed").startswith("1.6.") else 1)
PY
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install-feed-test-deps: $PYTHON not found; install Python 3 (e.g. apt-get install python3 python3-pip)" >&2
    exit 1
fi
if have_itchfeed; then
    exit 0
fi
pip_install() {
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@" "$WANT" >"$log" 2>&1
}
if ! pip_install && ! pip_install --user --break-system-packages; then
    cat "$log" >&2
    echo "install-feed-test-deps: pip install '$WANT' failed" >&2
    exit 1
fi
if ! have_itchfeed; then
    echo "install-feed-test-deps: '$WANT' installed but 'from itch.parser import MessageParser' still fails for $PYTHON" >&2
    exit 1
fi

#!/usr/bin/env bash
# Installs what sable-gateway's tests need beyond cargo, and builds the test tools that need it:
#   1. the Python `sbe` package (0.4.x), the independent SBE implementation that
#      gateway/tests/sbe_schema.rs checks the codec against;
#   2. QuickFIX C++ (Debian `libquickfix-dev`, 1.15.1) and g++, then the real-FIX-engine test
#      tools in gateway/tests/quickfix/ (sable-fix-client, sable-fix-echo-acceptor), compiled into
#      <cargo target dir>/quickfix/ -- `$CARGO_TARGET_DIR` if set, else target/ at the workspace
#      root -- which is where gateway/tests/common/quickfix.rs looks for them;
#   3. Debian's `ruby`, which runs QuickFIX's own acceptance tests (gateway/scripts/quickfix-at.sh);
#   4. Debian's `etcd-server`, the coordination service of automatic failover: the failover
#      tests (bench/tests/failover.rs) start their own etcd on loopback with a scratch data dir.
# Idempotent (installs nothing that is there, rebuilds only when a source is newer than its
# binary), quiet on success, loud on failure. `.ci/test` runs it from the workspace root before
# `cargo test --workspace`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
WANT='sbe>=0.4,<0.5'

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# ---- 1. Python sbe ---------------------------------------------------------------------------

have_sbe() {
    "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata, sys
import sbe  # noqa: F401
sys.exit(0 if importlib.metadata.version("sbe").startswith("0.4.") else 1)
PY
}

install_sbe() {
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "install-test-deps: $PYTHON not found; install Python 3 (e.g. apt-get install python3 python3-pip)" >&2
        exit 1
    fi
    if have_sbe; then
        return
    fi
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        echo "install-test-deps: pip is not available for $PYTHON (e.g. apt-get install python3-pip)" >&2
        exit 1
    fi
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
}

# ---- 2. QuickFIX C++ and the tools built on it; 3. ruby ---------------------------------------

# The Debian packages the tests need that are not installed yet: libquickfix-dev and g++ for
# the QuickFIX tools, ruby for QuickFIX's acceptance-test runner. One apt-get for all of them,
# and `apt-get update` only when something is missing.
install_debian_packages() {
    local missing=()
    dpkg-query -W -f='${Status}' libquickfix-dev 2>/dev/null | grep -q 'install ok installed' ||
        missing+=(libquickfix-dev)
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    command -v ruby >/dev/null 2>&1 || missing+=(ruby)
    command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "install-test-deps: need root to apt-get install ${missing[*]}" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    if ! { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-test-deps: apt-get install ${missing[*]} failed" >&2
        exit 1
    fi
}

# Compiler flags for QuickFIX 1.15.1's headers, and why:
#  -std=c++14, not c++17: the headers declare dynamic exception specifications
#     (`throw( ConfigError )`), which C++17 made ill-formed (g++ 12: "ISO C++17 does not allow
#     dynamic exception specifications"); there is no flag to allow them back.
#  no -DHAVE_STD_UNIQUE_PTR: without it Utility.h makes SmartPtr std::auto_ptr, and that is how
#     Debian built libquickfix.so.17 (it exports DataDictionary::readFromDocument(
#     std::auto_ptr<DOMDocument> const&) and Message::s_dataDictionary is an auto_ptr). Defining
#     it would compile against a different type than the library holds -- a silent ABI mismatch.
#     auto_ptr still exists in C++14, which is one more reason not to use C++17.
#  -DHAVE_STD_SHARED_PTR: the library was built with std::shared_ptr (see
#     DataDictionaryProvider::addTransportDataDictionary's signature); say so rather than rely on
#     Utility.h's fallback branch picking the same.
#  -Wno-deprecated: our Application overrides must repeat the dynamic exception specifications
#     (C++14 rejects an overrider with a looser one), which g++ flags as deprecated.
QF_CXXFLAGS=(-O1 -std=c++14 -DHAVE_STD_SHARED_PTR -Wall -Wno-deprecated)
QF_LIBS=(-lquickfix -lpthread)

target_dir() {
    local dir="${CARGO_TARGET_DIR:-$ROOT/target}"
    # Cargo resolves a relative CARGO_TARGET_DIR against the directory it runs in.
    case "$dir" in
    /*) ;;
    *) dir="$PWD/$dir" ;;
    esac
    printf '%s\n' "$dir"
}

build_quickfix_tools() {
    local src_dir="$ROOT/gateway/tests/quickfix"
    local out_dir
    out_dir="$(target_dir)/quickfix"
    mkdir -p "$out_dir"
    local pair name bin out
    for pair in sable_fix_client:sable-fix-client sable_fix_echo_acceptor:sable-fix-echo-acceptor; do
        name="${pair%%:*}"
        bin="${pair#*:}"
        out="$out_dir/$bin"
        if [ -x "$out" ] && [ ! "$src_dir/$name.cpp" -nt "$out" ] && [ ! "$src_dir/sable_fix_common.h" -nt "$out" ] &&
            [ ! "$0" -nt "$out" ]; then
            continue
        fi
        # Build beside the target and rename, so a concurrent run never sees half a binary.
        if ! g++ "${QF_CXXFLAGS[@]}" -I"$src_dir" "$src_dir/$name.cpp" -o "$out.tmp.$$" "${QF_LIBS[@]}" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$out.tmp.$$"
            echo "install-test-deps: building $bin from $src_dir/$name.cpp failed" >&2
            exit 1
        fi
        mv -f "$out.tmp.$$" "$out"
    done
}

install_sbe
install_debian_packages
build_quickfix_tools

#!/usr/bin/env bash
# Installs sable as systemd services: the system user, the binary, the units, an example
# configuration and the README; optionally the host tuning files. Idempotent: run it again after
# building a new release to upgrade the binary (the configuration is never overwritten).
#
#   sudo systemd/install.sh [--binary PATH] [--tuning] [--root DIR]
#
#   --binary PATH  the sable binary to install (default: target/release/sable; build it first
#                  with `cargo build --release -p sable-gateway --bin sable`)
#   --tuning       also install tuning/sysctl.d/90-sable.conf and the tuned profile
#                  tuning/tuned/sable (applied at the next `sysctl --system` / `tuned-adm
#                  profile sable`; the kernel command line stays the operator's job:
#                  tuning/kernel-cmdline.example)
#   --root DIR     install into DIR instead of / (packaging, tests): no user is created and
#                  systemctl is not called
#
# Then: edit /etc/sable/sable.toml (credentials, matcher_core, listen addresses), check the host
# with `sable tune check --config /etc/sable/sable.toml`, and `systemctl enable --now sable`.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BINARY="$REPO/target/release/sable"
ROOT=""
TUNING=0
SABLE_USER=sable

while [ $# -gt 0 ]; do
    case "$1" in
    --binary) BINARY="$2"; shift 2 ;;
    --root) ROOT="$(realpath -m "$2")"; shift 2 ;;
    --tuning) TUNING=1; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ ! -x "$BINARY" ]; then
    echo "install.sh: $BINARY is not an executable; build it: cargo build --release -p sable-gateway --bin sable" >&2
    exit 1
fi
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or with --root DIR)" >&2
    exit 1
fi

# 1. The system user: no login shell, no home of its own beyond the state directory.
if [ -z "$ROOT" ] && ! id -u "$SABLE_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/sable --no-create-home \
        --shell /usr/sbin/nologin --comment "sable order-matching appliance" "$SABLE_USER"
fi

# 2. The binary, the units and the README the units point to.
install -D -m 0755 "$BINARY" "$ROOT/usr/local/bin/sable"
install -D -m 0644 "$REPO/systemd/sable.service" "$ROOT/etc/systemd/system/sable.service"
install -D -m 0644 "$REPO/systemd/sable-standby.service" "$ROOT/etc/systemd/system/sable-standby.service"
install -D -m 0644 "$REPO/README.md" "$ROOT/usr/local/share/doc/sable/README.md"

# 3. The example configuration, derived from the embedded default (so it never drifts from it),
#    only if none is there: it holds session credentials, so root:sable 0640.
example_config() {
    local data_dir="$1"
    printf '# sable configuration for the systemd unit (written by systemd/install.sh from\n'
    printf '# gateway/config/default.toml). Change every credential before going live.\n\n'
    sed -e "s|^data_dir = \"./data\"|data_dir = \"$data_dir\"|" \
        -e 's|^# matcher_core = 1|matcher_core = 2|' \
        "$REPO/gateway/config/default.toml"
}
install_config() {
    local name="$1" data_dir="$2" path="$ROOT/etc/sable/$1"
    if [ -e "$path" ]; then
        echo "install.sh: keeping the existing $path"
        return
    fi
    install -d -m 0750 "$ROOT/etc/sable"
    example_config "$data_dir" >"$path.tmp"
    # The edits above match lines of default.toml; fail loudly if that file changed under them.
    if ! grep -q "^data_dir = \"$data_dir\"" "$path.tmp" || ! grep -q '^matcher_core = 2' "$path.tmp"; then
        rm -f "$path.tmp"
        echo "install.sh: gateway/config/default.toml changed; update example_config() in $0" >&2
        exit 1
    fi
    chmod 0640 "$path.tmp"
    if [ -z "$ROOT" ]; then
        chgrp "$SABLE_USER" "$ROOT/etc/sable" "$path.tmp"
    fi
    mv "$path.tmp" "$path"
}
install_config sable.toml /var/lib/sable
install_config sable-standby.toml /var/lib/sable-standby

# 4. Host tuning files, when asked.
if [ "$TUNING" -eq 1 ]; then
    install -D -m 0644 "$REPO/tuning/sysctl.d/90-sable.conf" "$ROOT/etc/sysctl.d/90-sable.conf"
    install -D -m 0644 "$REPO/tuning/tuned/sable/tuned.conf" "$ROOT/etc/tuned/sable/tuned.conf"
fi

if [ -z "$ROOT" ]; then
    systemctl daemon-reload
fi
echo "install.sh: installed into ${ROOT:-/}. Next: edit /etc/sable/sable.toml, run"
echo "  sable tune check --config /etc/sable/sable.toml"
echo "  systemctl enable --now sable"

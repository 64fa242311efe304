#!/usr/bin/env bash
# Removes what systemd/install.sh installed: stops and disables the units, removes them, the
# binary, the README copy and the tuning files. Keeps the configuration (/etc/sable) and the
# data (/var/lib/sable*: journal, snapshots, session stores) and the sable user unless --purge
# is given: the journal is the exchange's record.
#
#   sudo systemd/uninstall.sh [--purge] [--root DIR]
set -euo pipefail

ROOT=""
PURGE=0
SABLE_USER=sable

while [ $# -gt 0 ]; do
    case "$1" in
    --root) ROOT="$(realpath -m "$2")"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "uninstall.sh: run as root (or with --root DIR)" >&2
    exit 1
fi

if [ -z "$ROOT" ]; then
    for unit in sable.service sable-standby.service; do
        systemctl disable --now "$unit" 2>/dev/null || true
    done
fi
rm -f "$ROOT/etc/systemd/system/sable.service" "$ROOT/etc/systemd/system/sable-standby.service" \
    "$ROOT/usr/local/bin/sable" "$ROOT/usr/local/share/doc/sable/README.md" \
    "$ROOT/etc/sysctl.d/90-sable.conf" "$ROOT/etc/tuned/sable/tuned.conf"
rmdir "$ROOT/usr/local/share/doc/sable" "$ROOT/etc/tuned/sable" 2>/dev/null || true
if [ -z "$ROOT" ]; then
    systemctl daemon-reload
fi

if [ "$PURGE" -eq 1 ]; then
    rm -rf "$ROOT/etc/sable" "$ROOT/var/lib/sable" "$ROOT/var/lib/sable-standby"
    if [ -z "$ROOT" ] && id -u "$SABLE_USER" >/dev/null 2>&1; then
        userdel "$SABLE_USER"
    fi
    echo "uninstall.sh: removed sable, its configuration, its data and its user"
else
    echo "uninstall.sh: removed sable; kept /etc/sable, /var/lib/sable* and the sable user (--purge removes them)"
fi

#!/usr/bin/env bash
# Long crash drill: SIGKILL the engine+journal child 1,000 times (CI runs 50) and verify every
# recovery. Usage: snapshot/scripts/crash_loop.sh [CYCLES] [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
export SABLE_CRASH_CYCLES="${1:-1000}"
[ -n "${2:-}" ] && export SABLE_CRASH_SEED="$2"
exec cargo test -p sable-snapshot --test crash -- --nocapture sigkill

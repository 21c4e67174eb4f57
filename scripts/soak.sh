#!/usr/bin/env bash
# Soak run (suite 'soak'): 100,000 open/close cycles against echo_server and http_server with
# the server's descriptor count and resident memory sampled before and after, and a long echo
# run verifying every byte. Takes a few minutes; not part of scripts/test.sh.
# Usage: scripts/soak.sh [build-dir]   (default: build-rel, a plain build)
# SOAK_CYCLES (default 100000) and SOAK_SECONDS (long echo run, default 60) scale it.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build-rel}
[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbenchmarks=disabled >/dev/null
ninja -C "$dir" tests/soak/soak_test samples/echo_server samples/http_server
echo "=== soak: ${SOAK_CYCLES:-100000} cycles per server, ${SOAK_SECONDS:-60} s echo run ==="
meson test -C "$dir" --no-rebuild --suite soak --print-errorlogs --verbose

#!/usr/bin/env bash
# The main job, end to end: installs what is missing, builds, starts the echo server on a free
# loopback port, talks to it with a real client (nc), checks every byte came back, then stops it
# with SIGINT. Usage: scripts/demo.sh [--backend select|poll|epoll]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build samples/echo_server >/dev/null

out=$(mktemp)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -f "$out"
}
trap cleanup EXIT

./build/samples/echo_server --port 0 "$@" >"$out" &
server_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
banner=$(head -n1 "$out")
echo "server: $banner"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$banner")
[ -n "$port" ] || { echo "demo: the server did not start" >&2; exit 1; }

message="hello from the reactor demo $(date +%s)"
echo "client: sending \"$message\" with nc"
reply=$(printf '%s\n' "$message" | nc -q 1 127.0.0.1 "$port")
echo "client: received \"$reply\""
[ "$reply" = "$message" ] || { echo "demo: FAILED (echo mismatch)" >&2; exit 1; }

if [ -x build/samples/echo_client ] || ninja -C build samples/echo_client >/dev/null 2>&1; then
  echo "client: echo_client, 100 connections"
  ./build/samples/echo_client --port "$port" --connections 100 --messages 100 || exit 1
fi

kill -INT "$server_pid"
wait "$server_pid"
server_pid=
echo "server: $(tail -n1 "$out")"
echo "demo: OK, every byte came back"

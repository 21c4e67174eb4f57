#!/usr/bin/env bash
# The main job, end to end: installs what is missing, builds, then starts each sample server on a
# free loopback port and talks to it with a real client: the echo server with nc and echo_client,
# the HTTP server with curl, the key-value server with redis-cli. Checks every reply and stops
# each server with SIGINT. Usage: scripts/demo.sh [--backend select|poll|epoll|io_uring]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build samples/echo_server samples/echo_client samples/http_server samples/kv_server >/dev/null

log=$(mktemp)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

fail() { echo "demo: FAILED: $*" >&2; exit 1; }

# start NAME ARGS...: starts build/samples/NAME on port 0 and sets $port from its banner.
start() {
  local name=$1
  shift
  "./build/samples/$name" --port 0 "$@" >"$log" &
  server_pid=$!
  for _ in $(seq 200); do grep -q 'listening on' "$log" && break; sleep 0.05; done
  echo "server: $(head -n1 "$log")"
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
  [ -n "$port" ] || fail "$name did not start"
}

stop() {
  kill -INT "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=
  [ "$rc" -eq 0 ] || fail "server exited with status $rc after SIGINT"
  echo "server: stopped cleanly on SIGINT"
  echo
}

start echo_server "$@"
message="hello from the reactor demo $(date +%s)"
echo "nc:    sending \"$message\""
reply=$(printf '%s\n' "$message" | nc -q 1 127.0.0.1 "$port")
echo "nc:    received \"$reply\""
[ "$reply" = "$message" ] || fail "echo mismatch"
./build/samples/echo_client --port "$port" --connections 100 --messages 100 || fail "echo_client"
stop

start http_server "$@"
body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/")
echo "curl:  GET / -> $(head -c 60 <<<"$body" | tr '\n' ' ')"
status=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/missing")
echo "curl:  GET /missing -> $status"
[ "$status" = 404 ] || fail "expected 404"
stop

start kv_server "$@"
redis-cli -p "$port" SET greeting "hello reactor" >/dev/null
value=$(redis-cli -p "$port" GET greeting)
echo "redis-cli: SET greeting \"hello reactor\"; GET greeting -> \"$value\""
[ "$value" = "hello reactor" ] || fail "kv mismatch"
echo "redis-cli: INCR counter -> $(redis-cli -p "$port" INCR counter)"
stop

echo "demo: OK, every server answered its real client correctly"

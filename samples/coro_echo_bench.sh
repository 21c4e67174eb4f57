#!/bin/sh
# Benchmark (not a test): the same coro_echo_client load against echo_server (callbacks) and
# coro_echo_server (coroutines), alternating, several rounds; prints each rate and the ratio of
# the medians. Usage: samples/coro_echo_bench.sh [build-dir] [rounds] [client options...]
#   default client options: --connections 50 --messages 4000 --size 64
set -eu
build=${1:-build}
rounds=${2:-5}
shift 2 2>/dev/null || shift $#
opts=${*:-"--connections 50 --messages 4000 --size 64"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Starts server $1, prints "<pid> <port>" once its banner is out.
start() {
  "$build/samples/$1" --port 0 --backend epoll >"$tmp/$1.out" &
  pid=$!
  i=0
  while ! grep -q "(backend" "$tmp/$1.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "no banner from $1" >&2; exit 1; }
    sleep 0.05
  done
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$1.out")
  echo "$pid $port"
}

for server in echo_server coro_echo_server; do : >"$tmp/$server.rates"; : >"$tmp/$server.cpu"; done
r=1
while [ $r -le "$rounds" ]; do
  for server in echo_server coro_echo_server; do
    set -- $(start $server)
    line=$("$build/samples/coro_echo_client" --port "$2" $opts)
    rate=$(echo "$line" | sed -n 's/.*, \([0-9]*\) round trips\/s/\1/p')
    secs=$(echo "$line" | sed -n 's/.*, \([0-9.]*\) s, .*/\1/p')
    # The server's CPU time (user + system, in clock ticks) per round trip: less noisy than the
    # rate on a shared machine, where the client may be the bottleneck.
    ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
    cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v r="$rate" -v s="$secs" \
      'BEGIN {printf "%.2f", t / hz * 1e6 / (r * s)}')
    [ -n "$rate" ] || { echo "client failed against $server" >&2; kill -TERM "$1"; exit 1; }
    kill -TERM "$1"; wait "$1" || true
    echo "round $r $server $rate round trips/s, server CPU $cpu us per round trip"
    echo "$rate" >>"$tmp/$server.rates"
    echo "$cpu" >>"$tmp/$server.cpu"
  done
  r=$((r + 1))
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
cb=$(median "$tmp/echo_server.rates")
co=$(median "$tmp/coro_echo_server.rates")
echo "median echo_server (callbacks): $cb round trips/s"
echo "median coro_echo_server (coroutines): $co round trips/s"
awk -v a="$co" -v b="$cb" 'BEGIN {printf "throughput ratio coroutines / callbacks: %.3f\n", a / b}'
cbc=$(median "$tmp/echo_server.cpu")
coc=$(median "$tmp/coro_echo_server.cpu")
echo "median server CPU per round trip: callbacks $cbc us, coroutines $coc us"
awk -v a="$coc" -v b="$cbc" 'BEGIN {printf "CPU cost ratio coroutines / callbacks: %.3f\n", a / b}'

#!/usr/bin/env bash
# Installs, from Debian's package archive, everything the build, the tests, the samples and the
# benchmarks use. Safe to run again: it installs only what is missing. Needs root or sudo.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++ clang libclang-rt-14-dev
  # tests
  libgtest-dev libgmock-dev
  # benchmarks and comparison servers (never linked by the library itself)
  libbenchmark-dev libboost1.81-dev libevent-dev liburing-dev
  # real clients used by the integration tests and the demo
  netcat-openbsd socat curl wrk redis-tools
  # benchmarks: the comparison chart (benchmarks/compare.py)
  gnuplot-nox
  # API reference (ninja -C build docs) and the lint checks (scripts/lint.sh)
  doxygen clang-format clang-tidy
  # reliability: memcheck of the unit tests (scripts/valgrind.sh); prlimit for the fault tests
  valgrind util-linux
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"

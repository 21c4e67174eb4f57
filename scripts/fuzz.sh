#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan+UBSan; the library is compiled by clang
# too) into build-fuzz, then runs each one for a bounded time on a copy of its seed
# corpus (fuzz/corpus/<name>/). Prints libFuzzer's final "Done N runs in S second(s)" line per
# fuzzer and fails on any crash, leak, sanitizer report or broken invariant (the reproducer is
# left in build-fuzz/artifacts/). Usage: scripts/fuzz.sh [fuzzer ...]   (default: all)
# FUZZ_SECONDS (default 30) is each fuzzer's time budget.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/failures.sh

seconds=${FUZZ_SECONDS:-30}
dir=build-fuzz
all=(http_request_fuzzer resp_fuzzer stream_buffer_fuzzer)
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=("${all[@]}")

# Input size bounds per fuzzer: enough for several pipelined requests / long scripts, small
# enough to keep executions fast.
declare -A max_len=([http_request_fuzzer]=4096 [resp_fuzzer]=4096 [stream_buffer_fuzzer]=2048)

if [ ! -f "$dir/build.ninja" ]; then
  CXX=clang++ CC=clang meson setup "$dir" -Dfuzzers=true -Dtests=false -Dsamples=false \
    -Dbenchmarks=disabled -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$dir" "${fuzzers[@]/#/fuzz/}"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p "$dir/artifacts"
for f in "${fuzzers[@]}"; do
  seeds=fuzz/corpus/${f%_fuzzer}
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 2; }
  # New inputs go to a scratch corpus in the build dir; the repository's seeds stay as they are.
  work="$dir/corpus/$f"
  mkdir -p "$work"
  log="$dir/$f.log"
  echo "=== $f: ${seconds}s, -max_len=${max_len[$f]} ==="
  if "$dir/fuzz/$f" "$work" "$seeds" -max_total_time="$seconds" -max_len="${max_len[$f]}" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$f-" >"$log" 2>&1; then
    grep -E '^Done [0-9]+ runs' "$log" || { echo "$f: no final exec count" >&2; failed+=("$f"); }
    grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$log" | tr '\n' ' '
    echo
  else
    record_failure "$f" "$f failed; last lines of $log:" 40 "$log"
  fi
done
finish "fuzzers failed" "(reproducers in $dir/artifacts/)" "fuzzers passed: ${fuzzers[*]}"

#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (scripts/setup.sh), then builds
# and runs every test three times: a plain build, ASan+UBSan, and TSan; then runs the fuzzers for
# a bounded time (scripts/fuzz.sh, clang) and the unit tests under valgrind (scripts/valgrind.sh).
# The soak suite is left out (scripts/soak.sh runs it). Fails on the first failing configuration.
# Usage: scripts/test.sh [plain|asan|tsan|fuzz|valgrind ...]   (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(plain asan tsan fuzz valgrind)

# Sanitizer reports must fail the run, not scroll past.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

run_config() {
  local name=$1 dir options=()
  case "$name" in
    plain) dir=build ;;
    # UBSan's vptr check opens files the first time it meets a type; in the fd-exhaustion tests
    # it then reports a false type mismatch, so it is the one check left out.
    # Sanitizer builds are unoptimised (-O0 -g): a third of -O2's compile time on this code (the
    # bulk of CI's time on two cores), and the clearest reports; the tests run briefly either way.
    asan) dir=build-asan; options=(--buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
                                   -Dbenchmarks=disabled -Dcpp_args=-fno-sanitize=vptr) ;;
    tsan) dir=build-tsan; options=(--buildtype=debug -Db_sanitize=thread -Db_lundef=false
                                   -Dbenchmarks=disabled) ;;
    # Fuzzers: their own clang build (build-fuzz); FUZZ_SECONDS bounds each one (default 30 s).
    fuzz) echo "=== fuzz (build-fuzz) ==="; bash scripts/fuzz.sh; return ;;
    # Memcheck of the plain build's unit tests (scripts/valgrind.sh says which it filters out).
    valgrind) echo "=== valgrind (build) ==="; bash scripts/valgrind.sh build; return ;;
    *) echo "test.sh: unknown configuration '$name' (plain, asan, tsan, fuzz, valgrind)" >&2; return 2 ;;
  esac
  echo "=== $name build ($dir) ==="
  if [ -f "$dir/build.ninja" ]; then
    [ ${#options[@]} -eq 0 ] || meson configure "$dir" "${options[@]}" >/dev/null
  else
    meson setup "$dir" "${options[@]}" >/dev/null
  fi
  ninja -C "$dir"
  echo "=== $name tests ==="
  # The soak suite runs for minutes; scripts/soak.sh runs it on its own.
  meson test -C "$dir" --print-errorlogs --num-processes 2 --no-suite soak
}

for c in "${configs[@]}"; do run_config "$c"; done
echo "=== all configurations passed: ${configs[*]} ==="

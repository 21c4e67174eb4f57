#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (scripts/setup.sh), then builds
# and runs every test three times: a plain build, ASan+UBSan, and TSan; then runs the fuzzers for
# a bounded time (scripts/fuzz.sh, clang) and the unit tests under valgrind (scripts/valgrind.sh).
# The plain build's suite also runs twice more, with io_uring and with poll as the default
# backend (REACTOR_BACKEND); the io_uring pass is skipped, with the reason, where this build or
# kernel has no io_uring, and the final line lists it as skipped (TEST_REQUIRE_IO_URING=1 makes
# that a failure instead). The soak suite is left out (scripts/soak.sh runs it). Fails on the
# first failing configuration.
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

skipped=()  # passes that could not run here, each with its reason

# The suite once more per backend, as the default one: every test built on a default Reactor,
# ReactorPool or PoolExecutor then runs on it, not only the conformance suites, which loop over
# every backend themselves. (The sample-program tests name their backends and repeat as they
# are.) backend_probe says whether the backend can run here, and if not, why.
default_backend_passes() {
  local dir=$1 backend why
  for backend in io_uring poll; do
    if why=$("$dir/tests/backends/backend_probe" "$backend"); then
      echo "=== plain tests, REACTOR_BACKEND=$backend ==="
      REACTOR_BACKEND=$backend meson test -C "$dir" --no-rebuild --print-errorlogs \
        --num-processes 2 --no-suite soak --logbase "testlog-$backend"
    elif [ -n "$why" ]; then
      echo "=== plain tests, REACTOR_BACKEND=$backend: SKIPPED, not run: $why ==="
      if [ "$backend" = io_uring ] && [ "${TEST_REQUIRE_IO_URING:-0}" = 1 ]; then
        echo "test.sh: TEST_REQUIRE_IO_URING=1 but io_uring cannot run here" >&2
        return 1
      fi
      skipped+=("plain with REACTOR_BACKEND=$backend ($why)")
    else
      echo "test.sh: $dir/tests/backends/backend_probe failed; was the build made with tests?" >&2
      return 1
    fi
  done
}

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
  if [ "$name" = plain ]; then default_backend_passes "$dir"; fi
}

for c in "${configs[@]}"; do run_config "$c"; done
echo "=== all configurations passed: ${configs[*]} ==="
for s in "${skipped[@]}"; do echo "=== SKIPPED, not passed: $s ==="; done

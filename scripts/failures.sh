# shellcheck shell=bash
# Sourced by the scripts that run several checks and report them together at the end (fuzz.sh,
# valgrind.sh), so that one failure does not hide the others: record_failure notes a failed
# check and shows why, finish ends the script with one summary line and its exit status.

failed=()

# record_failure NAME MESSAGE LINES FILE...: NAME failed; prints "!!! MESSAGE" and the last LINES
# lines of each FILE on stderr.
record_failure() {
  local name=$1 message=$2 lines=$3
  shift 3
  echo "!!! $message" >&2
  tail -n "$lines" "$@" >&2
  failed+=("$name")
}

# finish FAILED_TEXT HINT PASSED_TEXT: "=== FAILED_TEXT: <names> HINT ===" on stderr and exit
# status 1 if anything failed, else "=== PASSED_TEXT ===".
finish() {
  if [ ${#failed[@]} -gt 0 ]; then
    echo "=== $1: ${failed[*]}${2:+ $2} ===" >&2
    exit 1
  fi
  echo "=== $3 ==="
}

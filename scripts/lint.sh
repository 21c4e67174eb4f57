#!/usr/bin/env bash
# Checks formatting (clang-format, .clang-format) of every tracked C++ file and runs clang-tidy
# (.clang-tidy) over the library's sources with the build's compile_commands.json. Exits non-zero
# when either finds something. Usage: scripts/lint.sh [build-dir]   (default: build)
# Also `ninja -C <build-dir> lint`. Set LINT_JOBS to change clang-tidy's parallelism (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" 2>/dev/null && pwd) || { echo "lint: no build directory '${1:-build}' (run meson setup first)" >&2; exit 2; }
cd "$root"

pick() {  # the versioned tool Debian 12 ships, else whatever is on PATH
  command -v "$1-14" || command -v "$1" || { echo "lint: $1 not found (apt-get install clang-tools-14 clang-format-14 clang-tidy-14)" >&2; exit 2; }
}
clang_format=$(pick clang-format)
clang_tidy=$(pick clang-tidy)

# Tracked files only, so a half-written file of someone else's never fails the check.
mapfile -t cxx_files < <(git ls-files -- '*.cpp' '*.hpp' '*.h')
echo "lint: clang-format on ${#cxx_files[@]} tracked files"
format_status=0
"$clang_format" --dry-run -Werror "${cxx_files[@]}" || format_status=1

# The library's own translation units as this build compiles them (only the backends it has).
[ -f "$build/compile_commands.json" ] || { echo "lint: $build/compile_commands.json missing" >&2; exit 2; }
mapfile -t sources < <(python3 - "$build/compile_commands.json" "$root" <<'PY'
import json, os, sys
root = os.path.realpath(sys.argv[2])
seen = set()
for entry in json.load(open(sys.argv[1])):
    path = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    rel = os.path.relpath(path, root)
    if rel.split(os.sep)[0] in ("demux", "handlers", "reactor") and rel not in seen:
        seen.add(rel)
        print(rel)
PY
)
echo "lint: clang-tidy on ${#sources[@]} library sources"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%s\n' "${sources[@]}" |
  xargs -P "${LINT_JOBS:-2}" -I{} "$clang_tidy" -p "$build" --quiet {} >"$log" 2>/dev/null || true
# Paths come absolute or relative to the build directory; a header's finding is reported once
# per file that includes it. Print each place once, relative to the repository.
findings=$(python3 - "$log" "$build" "$root" <<'PY'
import os, re, sys
log, build, root = sys.argv[1:4]
seen = set()
for line in open(log, errors="replace"):
    m = re.match(r"^(\S[^:]*):(\d+):(\d+): (warning|error): (.*)$", line.rstrip("\n"))
    if not m:
        continue
    path = os.path.realpath(os.path.join(build, m.group(1)))
    seen.add(f"{os.path.relpath(path, root)}:{m.group(2)}:{m.group(3)}: {m.group(4)}: {m.group(5)}")
print("\n".join(sorted(seen)))
PY
)
count=$(printf '%s' "$findings" | grep -c . || true)
if [ "$count" -gt 0 ]; then
  printf '%s\n' "$findings"
fi
echo "lint: clang-tidy findings: $count"

if [ "$format_status" -ne 0 ] || [ "$count" -gt 0 ]; then
  echo "lint: FAILED (format: $([ $format_status -eq 0 ] && echo ok || echo 'not clean, run clang-format -i'), tidy: $count)"
  exit 1
fi
echo "lint: clean"

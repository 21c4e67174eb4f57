// Shared by the fuzzers: a check that aborts with a message, so a broken invariant is reported
// by libFuzzer as a crash (with the input saved) rather than passing silently.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace fuzz {

/// Aborts with `what` when `ok` is false. Unlike assert(), it is never compiled out.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace fuzz

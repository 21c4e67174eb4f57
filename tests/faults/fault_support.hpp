// Helpers for the fault-injection and soak suites. The server child process (run with an
// optional wrapper such as prlimit), its /proc readings and the loopback clients come from
// tests/support (child_process.hpp, loopback_client.hpp); every wait there is bounded and waits
// on a condition, never on a bare sleep.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "child_process.hpp"
#include "loopback_client.hpp"

namespace faults {

using namespace child;
using namespace loopback;

/// Skips the test when the binary is not given (run outside meson test).
#define REQUIRE_BINARY(path, var)    \
  const std::string path = env(var); \
  if (path.empty()) GTEST_SKIP() << var " is not set (run the test through meson)"

/// Checks that a started server printed its banner.
#define ASSERT_STARTED(server) \
  ASSERT_GT(server.port(), 0) << "no banner from the server: '" << server.banner() << "'"

/// One echo round trip of `message` on `c`; true when exactly it came back in time.
inline bool echoes(Client& c, const std::string& message, std::chrono::milliseconds limit = 10s) {
  return c.connected() && c.send(message) && c.receive(message.size(), limit) == message;
}

}  // namespace faults

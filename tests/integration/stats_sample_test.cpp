// The sample servers' statistics: SIGUSR1 prints the reactor's counters and one line per handler,
// and --stats prints them once more at exit; with --threads N, every reactor's, each labelled.
#include <gtest/gtest.h>

#include "sample_process.hpp"

namespace sample_test {
namespace {

// Reads the child's stdout until `needle` has appeared `times` times, or the deadline passes.
std::string read_until_count(int fd, const std::string& needle, int times,
                             Clock::time_point deadline) {
  std::string out;
  read_until(fd, out, deadline,
             [&](const std::string& text) { return count_of(text, needle) >= times; });
  return out;
}

TEST(SampleStats, Sigusr1AndExitPrintCountersAndHandlers) {
  const std::string path = env("ECHO_SERVER");
  if (path.empty()) GTEST_SKIP() << "ECHO_SERVER is not set (run the test through meson)";
  ServerProcess server(path, "epoll", {"--stats"});
  ASSERT_GT(server.port(), 0) << server.banner();
  ASSERT_EQ(::kill(server.pid(), SIGUSR1), 0);
  const std::string first =
      read_until_count(server.output_fd(), "reactor: backend=epoll", 1, Clock::now() + 10s);
  EXPECT_NE(first.find("reactor: backend=epoll iterations="), std::string::npos) << first;
  EXPECT_NE(first.find("signals=1"), std::string::npos) << first;
  EXPECT_NE(first.find("interest=accept"), std::string::npos) << first;  // the acceptor's line
  EXPECT_EQ(server.stop(SIGINT), 0);
  const std::string rest =
      read_until_count(server.output_fd(), "reactor: backend=epoll", 1, Clock::now() + 10s);
  EXPECT_NE(rest.find("reactor: backend=epoll"), std::string::npos) << rest;  // the exit dump
}

TEST(SampleStats, EveryReactorOfAPoolPrintsOnSigusr1AndAtExit) {
  for (const char* variable : {"ECHO_SERVER", "CHAT_SERVER", "HTTP_SERVER", "KV_SERVER"}) {
    SCOPED_TRACE(variable);
    const std::string path = env(variable);
    if (path.empty()) GTEST_SKIP() << variable << " is not set (run the test through meson)";
    ServerProcess server(path, "epoll", {"--threads", "2", "--stats"});
    ASSERT_GT(server.port(), 0) << server.banner();
    EXPECT_NE(server.banner().find(" with 2 threads"), std::string::npos) << server.banner();
    // Each reactor watches SIGUSR1 and prints its own block from its own thread. The stats
    // line ends with notifications_queued=, so two of those mean both lines are complete.
    ASSERT_EQ(::kill(server.pid(), SIGUSR1), 0);
    const std::string first =
        read_until_count(server.output_fd(), "notifications_queued=", 2, Clock::now() + 10s);
    const auto blocks = reactor_blocks(first, 2);
    for (const std::string& block : blocks) {
      EXPECT_EQ(block.rfind("reactor: backend=epoll iterations=", 0), 0U) << first;
      EXPECT_NE(block.find("signals=1 "), std::string::npos) << first;
    }
    EXPECT_EQ(server.stop(SIGTERM), 0);
    // At exit, the two blocks again, in reactor order.
    const std::string rest = read_until_eof(server.output_fd(), Clock::now() + 10s);
    const auto zero = rest.find("[reactor 0/2]\nreactor: backend=epoll");
    const auto one = rest.find("[reactor 1/2]\nreactor: backend=epoll");
    EXPECT_NE(zero, std::string::npos) << rest;
    EXPECT_NE(one, std::string::npos) << rest;
    EXPECT_LT(zero, one) << rest;
  }
}

}  // namespace
}  // namespace sample_test

// The sample programs' shared command line (samples/sample_args.hpp) and --threads: bad values are
// refused with a clear message and status 2, --help lists the flags with status 0, --threads 1 is
// today's server (the same banner, one thread in the process) and --threads 2 adds exactly one.
#include <gtest/gtest.h>

#include "sample_process.hpp"

namespace sample_test {
namespace {

// The four sample servers, by the variable meson passes each one's path in.
const std::vector<std::string> servers = {"ECHO_SERVER", "CHAT_SERVER", "HTTP_SERVER", "KV_SERVER"};

std::string path_of(const std::string& variable) { return env(variable.c_str()); }

TEST(SampleArgs, BadValuesAreRefusedWithAMessageAndStatus2) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--threads", "0"}, "--threads: expected an integer from 1 to 256, got '0'"},
      {{"--threads", "257"}, "--threads: expected an integer from 1 to 256, got '257'"},
      {{"--threads", "two"}, "--threads: expected an integer from 1 to 256, got 'two'"},
      {{"--port", "abc"}, "--port: expected an integer from 0 to 65535, got 'abc'"},
      {{"--port=70000"}, "--port: expected an integer from 0 to 65535, got '70000'"},
      {{"--port", "-1"}, "--port: expected an integer from 0 to 65535, got '-1'"},
      {{"--backend", "nope"}, "--backend: expected one of"},
      {{"--port"}, "--port needs a value"},
      {{"--stats=yes"}, "--stats takes no value"},
      {{"--frobnicate", "1"}, "unknown option '--frobnicate'"},
  };
  for (const auto& variable : servers) {
    const std::string path = path_of(variable);
    if (path.empty()) GTEST_SKIP() << variable << " is not set (run the test through meson)";
    for (const auto& c : cases) {
      std::vector<std::string> argv = {path};
      argv.insert(argv.end(), c.args.begin(), c.args.end());
      const auto r = run(argv, 10s);
      SCOPED_TRACE(variable + " " + c.args[0]);
      EXPECT_EQ(r.exit_code, 2) << r.output;
      EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
      EXPECT_NE(r.output.find("usage: "), std::string::npos) << r.output;
    }
  }
}

TEST(SampleArgs, HelpListsTheCommonFlagsAndExitsZero) {
  for (const auto& variable : servers) {
    const std::string path = path_of(variable);
    if (path.empty()) GTEST_SKIP() << variable << " is not set (run the test through meson)";
    const auto r = run({path, "--help"}, 10s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (const char* flag : {"--port N", "--backend NAME", "--threads N", "--stats"}) {
      EXPECT_NE(r.output.find(flag), std::string::npos) << variable << ": " << r.output;
    }
  }
  // A sample's own flags are still there.
  const auto echo = run({path_of("ECHO_SERVER"), "--help"}, 10s);
  EXPECT_NE(echo.output.find("--max-fds N"), std::string::npos) << echo.output;
}

TEST(SampleArgs, EchoClientUsesTheSameParser) {
  const std::string path = path_of("ECHO_CLIENT");
  if (path.empty()) GTEST_SKIP() << "ECHO_CLIENT is not set (run the test through meson)";
  auto r = run({path, "--connections", "0"}, 10s);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--connections: expected an integer from 1 to"), std::string::npos)
      << r.output;
  r = run({path, "--port", "0"}, 10s);  // the client needs a real port
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run({path, "--help"}, 10s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--messages M"), std::string::npos) << r.output;
}

TEST(SampleThreads, OneThreadIsTodaysServerAndTwoAddExactlyOneThread) {
  for (const auto& variable : servers) {
    const std::string path = path_of(variable);
    if (path.empty()) GTEST_SKIP() << variable << " is not set (run the test through meson)";
    SCOPED_TRACE(variable);
    ServerProcess plain(path, "epoll");
    ServerProcess one(path, "epoll", {"--threads", "1"});
    ServerProcess two(path, "epoll", {"--threads", "2"});
    ASSERT_GT(plain.port(), 0) << plain.banner();
    ASSERT_GT(one.port(), 0) << one.banner();
    ASSERT_GT(two.port(), 0) << two.banner();
    // The same banner as without the flag (the port aside), and nothing about threads.
    auto without_port = [](const ServerProcess& s) {
      std::string b = s.banner();
      const auto colon = b.rfind(':');
      const auto end = b.find(' ', colon);
      return b.erase(colon, end - colon);
    };
    EXPECT_EQ(without_port(one), without_port(plain));
    EXPECT_EQ(one.banner().find("thread"), std::string::npos) << one.banner();
    EXPECT_EQ(two.banner().substr(two.banner().size() - 15), " with 2 threads") << two.banner();
    // The banner comes after every thread has been started (or, for one, there is none).
    EXPECT_EQ(thread_count(plain.pid()), 1);
    EXPECT_EQ(thread_count(one.pid()), 1);
    if (sanitized) {
      // ThreadSanitizer's runtime starts a thread of its own with the process's second one.
      EXPECT_GE(thread_count(two.pid()), 2);
    } else {
      EXPECT_EQ(thread_count(two.pid()), 2);
    }
    EXPECT_EQ(plain.stop(SIGTERM), 0);
    EXPECT_EQ(one.stop(SIGINT), 0);
    EXPECT_EQ(two.stop(SIGINT), 0);
  }
}

}  // namespace
}  // namespace sample_test

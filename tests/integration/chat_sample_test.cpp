// chat_server as a whole program, on select, poll and epoll: the banner, lines from real clients
// (nc, socat) broadcast to the others, no echo to the sender, clean exit on SIGINT, and a client
// that never reads being cut off instead of growing the server's memory.
#include <gtest/gtest.h>

#include <regex>

#include "sample_server_process.hpp"

namespace sample_test {
namespace {

class ChatSample : public ::testing::TestWithParam<std::string> {
 protected:
  std::string server_path() const { return env("CHAT_SERVER"); }
};

// Receives until `text` has arrived (bounded).
std::string wait_for(Client& c, const std::string& text) {
  return c.receive_until(
      [&](const std::string& got) { return got.find(text) != std::string::npos; });
}

TEST_P(ChatSample, LinesFromRealClientsReachEveryoneElse) {
  SampleServer server(server_path(), GetParam());
  ASSERT_GT(server.port(), 0) << server.banner();
  EXPECT_TRUE(std::regex_match(server.banner(),
                               std::regex("chat_server listening on 127\\.0\\.0\\.1:[0-9]+ "
                                          "\\(backend " +
                                          GetParam() + "\\)")))
      << server.banner();
  Client a(server.port());
  Client b(server.port());
  ASSERT_TRUE(a.connected() && b.connected());
  EXPECT_NE(wait_for(a, "welcome user1\n").find("welcome user1\n"), std::string::npos);
  EXPECT_NE(wait_for(b, "welcome user2\n").find("welcome user2\n"), std::string::npos);
  const std::string port = std::to_string(server.port());
  auto nc = run({"nc", "-N", "127.0.0.1", port}, 10s, "hello from nc\n");
  EXPECT_EQ(nc.exit_code, 0) << nc.output;
  EXPECT_NE(wait_for(a, "hello from nc\n").find(": hello from nc\n"), std::string::npos);
  EXPECT_NE(wait_for(b, "hello from nc\n").find(": hello from nc\n"), std::string::npos);
  auto socat = run({"socat", "-t", "1", "-", "TCP:127.0.0.1:" + port}, 10s, "hi from socat\r\n");
  EXPECT_EQ(socat.exit_code, 0) << socat.output;
  EXPECT_NE(wait_for(a, "hi from socat\n").find(": hi from socat\n"), std::string::npos);
  EXPECT_NE(wait_for(b, "hi from socat\n").find(": hi from socat\n"), std::string::npos);
  // A's line reaches B; B's answer is the next thing A sees (A never gets its own line back).
  ASSERT_TRUE(a.send("ping\n"));
  EXPECT_EQ(wait_for(b, "\n"), "user1: ping\n");
  ASSERT_TRUE(b.send("pong\n"));
  EXPECT_EQ(wait_for(a, "\n"), "user2: pong\n");
  // Partial lines wait for their end.
  ASSERT_TRUE(a.send("par"));
  ASSERT_TRUE(a.send("tial\n"));
  EXPECT_EQ(wait_for(b, "\n"), "user1: partial\n");
  EXPECT_EQ(server.stop(SIGINT), 0);
}

TEST_P(ChatSample, ClientThatNeverReadsIsCutOffAndMemoryStaysBounded) {
  SampleServer server(server_path(), GetParam());
  ASSERT_GT(server.port(), 0);
  const long rss_before = server.rss_kib();
  // The slow client: connected, never reads.
  const int slow = connect_nonblocking(server.port());
  ASSERT_GE(slow, 0);
  Client reader(server.port());
  Client talker(server.port());
  ASSERT_TRUE(reader.connected() && talker.connected());
  wait_for(reader, "welcome");
  wait_for(talker, "welcome");
  // The talker sends 16 MiB of lines; the reader keeps up; the slow one does not read at all.
  const std::string line = std::string(1000, 'c') + "\n";
  std::string batch;
  for (int i = 0; i < 64; ++i) batch += line;
  const int batches = 256;  // 16 MiB: well beyond what kernel socket buffers can absorb
  std::size_t received = 0;
  std::size_t expected = 0;
  for (int i = 0; i < batches; ++i) {
    ASSERT_TRUE(talker.send(batch));
    expected += 64 * (line.size() + 7);  // "user3: " prefix on every line
    // Keep up: read what has arrived so far (bounded by the expectation, so no wait is needed
    // once everything sent has come back).
    received += reader
                    .receive_until([&](const std::string& got) {
                      return received + got.size() + 256 * 1024 >= expected;
                    })
                    .size();
  }
  received +=
      reader
          .receive_until([&](const std::string& got) { return received + got.size() >= expected; })
          .size();
  EXPECT_EQ(received, expected);
  const long rss_after = server.rss_kib();
  // The slow client was disconnected: reading its socket ends in EOF or a reset.
  std::string drained;
  bool ended = false;
  const auto deadline = Clock::now() + 10s;
  char buf[65536];
  while (!ended && Clock::now() < deadline) {
    pollfd p{slow, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) break;
    const ssize_t n = ::recv(slow, buf, sizeof buf, 0);
    if (n > 0) drained.append(buf, static_cast<std::size_t>(n));
    ended = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
  }
  ::close(slow);
  std::printf(
      "[ measure  ] %s: talker sent %zu KiB; slow client got %zu KiB before being cut "
      "off; server RSS %ld -> %ld KiB\n",
      GetParam().c_str(), expected / 1024, drained.size() / 1024, rss_before, rss_after);
  EXPECT_TRUE(ended);
  EXPECT_LT(drained.size(), expected);  // it missed what came after it was cut off
  if (!sanitized) {
    EXPECT_LT(rss_after - rss_before, 16 * 1024);
  }
  // The room still works.
  ASSERT_TRUE(reader.send("after\n"));
  EXPECT_NE(wait_for(talker, "after\n").find("after\n"), std::string::npos);
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ChatSample, ::testing::ValuesIn(backends),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sample_test

// kv_server over a raw socket: pipelined RESP and inline commands (replies in order), malformed
// frames (an error reply, then a close), QUIT, and limits. On each of select, poll and epoll.
#include <gtest/gtest.h>

#include <string>

#include "sample_process.hpp"

namespace {

using namespace sample_test;

// Number of complete CRLF-terminated lines in `s` (every reply used here is one line, or a bulk
// string of two lines).
std::size_t lines(const std::string& s) {
  std::size_t n = 0;
  for (auto at = s.find("\r\n"); at != std::string::npos; at = s.find("\r\n", at + 2)) ++n;
  return n;
}

auto has_lines(std::size_t n) {
  return [n](const std::string& s) { return lines(s) >= n; };
}

class KvProtocol : public SampleServerTest<std::string> {
 protected:
  KvProtocol() : SampleServerTest("KV_SERVER") {}
  // Sends a malformed frame and expects one protocol error reply, then a close.
  void expect_protocol_error(const std::string& frame) {
    Client c = connect();
    ASSERT_TRUE(c.send("PING\r\n" + frame));
    const auto got = c.receive_all();
    EXPECT_TRUE(c.eof()) << "the server must close after a malformed frame";
    EXPECT_EQ(got.rfind("+PONG\r\n-ERR protocol error: ", 0), 0U) << got;
    EXPECT_EQ(lines(got), 2U) << got;
  }
};

TEST_P(KvProtocol, PipelinedCommandsAreAnsweredInOrder) {
  Client c = connect();
  ASSERT_TRUE(
      c.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"
             "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
             "GET k\r\n"
             "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n"
             "BOGUS\r\n"
             "PING\r\n"));
  const auto got = c.receive_until(has_lines(8));
  EXPECT_EQ(got,
            "+OK\r\n:6\r\n$1\r\n6\r\n$4\r\na\r\nb\r\n-ERR unknown command 'BOGUS'\r\n+PONG\r\n");
}

TEST_P(KvProtocol, ThousandPipelinedIncrs) {
  Client c = connect();
  std::string batch;
  constexpr int n = 1000;  // about 25 KiB: several reads of the server
  for (int i = 0; i < n; ++i) batch += "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n";
  ASSERT_TRUE(c.send(batch));
  const auto got = c.receive_until(has_lines(n));
  ASSERT_EQ(lines(got), static_cast<std::size_t>(n));
  EXPECT_EQ(got.substr(0, 8), ":1\r\n:2\r\n");
  EXPECT_EQ(got.substr(got.size() - 7), ":1000\r\n");
}

TEST_P(KvProtocol, FrameSplitAcrossWrites) {
  Client c = connect();
  ASSERT_TRUE(c.send("*3\r\n$3\r\nSET\r\n$3\r\nke"));
  ASSERT_TRUE(c.send("y\r\n$5\r\nval"));
  ASSERT_TRUE(c.send("ue\r\nGET key\r\n"));
  EXPECT_EQ(c.receive_until(has_lines(3)), "+OK\r\n$5\r\nvalue\r\n");
}

TEST_P(KvProtocol, QuitRepliesThenCloses) {
  Client c = connect();
  ASSERT_TRUE(c.send("PING\r\nQUIT\r\nPING\r\n"));
  const auto got = c.receive_all();
  EXPECT_TRUE(c.eof());
  EXPECT_EQ(got, "+PONG\r\n+OK\r\n");
}

TEST_P(KvProtocol, MalformedFramesGetAnErrorAndAClose) {
  expect_protocol_error("*1\r\n+PING\r\n");
  expect_protocol_error("*x\r\n");
  expect_protocol_error("*1\r\n$4\r\nPINGxx\r\n");
  expect_protocol_error("*1\r\n$-5\r\n");
  expect_protocol_error("*99999\r\n");           // too many arguments
  expect_protocol_error("*1\r\n$99999999\r\n");  // bulk too large
}

TEST_P(KvProtocol, EndlessInlineLineIsRefused) {
  Client c = connect();
  // Longer than the inline limit, without a line end: refused instead of buffered forever.
  (void)c.send(std::string(100 * 1024, 'x'));
  const auto got = c.receive_all();
  EXPECT_TRUE(c.eof());
  EXPECT_EQ(got.rfind("-ERR protocol error: ", 0), 0U) << got.substr(0, 100);
}

TEST_P(KvProtocol, LargeValueRoundTrips) {
  Client c = connect();
  std::string value(500 * 1024, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(c.send("*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$" + std::to_string(value.size()) + "\r\n" +
                     value + "\r\n*2\r\n$3\r\nGET\r\n$1\r\nv\r\n"));
  const std::string expected = "+OK\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  const auto got =
      c.receive_until([&](const std::string& s) { return s.size() >= expected.size(); });
  EXPECT_TRUE(got == expected) << "got " << got.size() << " bytes";
}

INSTANTIATE_TEST_SUITE_P(Backends, KvProtocol, ::testing::ValuesIn(backends),
                         [](const auto& info) { return info.param; });

}  // namespace

// http_server over a raw socket: pipelining (answers in order, one batch), Connection: close in
// a pipeline, HTTP/1.0, split requests, large bodies, and the error statuses (400, 413, 431, 501,
// 505) each followed by a close. On each of select, poll and epoll.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sample_process.hpp"

namespace {

using namespace sample_test;

struct Response {
  int status = 0;
  std::string head;
  std::string body;
};

// Splits complete responses off the front of `bytes` (Content-Length framing).
std::vector<Response> split_responses(const std::string& bytes) {
  std::vector<Response> out;
  std::size_t pos = 0;
  for (;;) {
    const auto end = bytes.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    Response r;
    r.head = bytes.substr(pos, end + 4 - pos);
    const auto cl = r.head.find("Content-Length: ");
    if (cl == std::string::npos || r.head.size() < 12) break;
    const auto length = std::stoul(r.head.substr(cl + 16));
    if (bytes.size() < end + 4 + length) break;
    r.status = std::stoi(r.head.substr(9, 3));
    r.body = bytes.substr(end + 4, length);
    out.push_back(std::move(r));
    pos = end + 4 + length;
  }
  return out;
}

auto has_responses(std::size_t n) {
  return [n](const std::string& s) { return split_responses(s).size() >= n; };
}

class HttpProtocol : public SampleServerTest<std::string> {
 protected:
  HttpProtocol() : SampleServerTest("HTTP_SERVER") {}
  // Sends `request` on a new connection and expects `status` then a close.
  void expect_error_then_close(const std::string& request, int status) {
    Client c = connect();
    ASSERT_TRUE(c.send(request));
    const auto got = c.receive_all();
    EXPECT_TRUE(c.eof()) << "the server must close after a " << status;
    const auto responses = split_responses(got);
    ASSERT_EQ(responses.size(), 1U) << got;
    EXPECT_EQ(responses[0].status, status) << got;
    EXPECT_NE(responses[0].head.find("Connection: close\r\n"), std::string::npos);
  }
};

TEST_P(HttpProtocol, PipelinedRequestsAreAnsweredInOrder) {
  Client c = connect();
  std::string batch;
  const char* paths[] = {"/", "/json", "/health", "/nope", "/health"};
  for (const char* p : paths) batch += std::string("GET ") + p + " HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(c.send(batch));
  const auto got = c.receive_until(has_responses(5));
  const auto r = split_responses(got);
  ASSERT_EQ(r.size(), 5U) << got;
  EXPECT_EQ(r[0].body, "Hello from reactor http_server\n");
  EXPECT_EQ(r[1].body, "{\"message\":\"Hello, World!\"}\n");
  EXPECT_EQ(r[2].body, "ok\n");
  EXPECT_EQ(r[3].status, 404);
  EXPECT_EQ(r[4].body, "ok\n");
  // The connection stays usable.
  ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(split_responses(c.receive_until(has_responses(1))).size(), 1U);
}

TEST_P(HttpProtocol, ManyPipelinedRequestsInOneWrite) {
  Client c = connect();
  std::string batch;
  constexpr std::size_t n = 500;  // about 17 KiB: more than one read of the server
  for (std::size_t i = 0; i < n; ++i) batch += "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(c.send(batch));
  const auto r = split_responses(c.receive_until(has_responses(n)));
  ASSERT_EQ(r.size(), n);
  for (const auto& resp : r) ASSERT_EQ(resp.body, "ok\n");
}

TEST_P(HttpProtocol, ConnectionCloseEndsThePipeline) {
  Client c = connect();
  ASSERT_TRUE(
      c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
             "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto got = c.receive_all();
  EXPECT_TRUE(c.eof());
  const auto r = split_responses(got);
  ASSERT_EQ(r.size(), 2U) << got;
  EXPECT_EQ(r[1].body, "{\"message\":\"Hello, World!\"}\n");
  EXPECT_NE(r[1].head.find("Connection: close\r\n"), std::string::npos);
}

TEST_P(HttpProtocol, Http10KeepAliveOnlyWhenAsked) {
  Client c = connect();
  ASSERT_TRUE(c.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = split_responses(c.receive_until(has_responses(1)));
  ASSERT_EQ(r.size(), 1U);
  EXPECT_NE(r[0].head.find("Connection: keep-alive\r\n"), std::string::npos);
  ASSERT_TRUE(c.send("GET /health HTTP/1.0\r\n\r\n"));
  const auto got = c.receive_all();
  EXPECT_TRUE(c.eof());
  EXPECT_EQ(split_responses(got).size(), 1U);
}

TEST_P(HttpProtocol, RequestSplitAcrossWritesAndHalfClose) {
  Client c = connect();
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHo"));
  ASSERT_TRUE(c.send("st: x\r\nContent-Length: 10\r\n\r\n01234"));
  ASSERT_TRUE(c.send("56789"));
  c.shutdown_write();  // the answer must still come before the server closes
  const auto got = c.receive_all();
  EXPECT_TRUE(c.eof());
  const auto r = split_responses(got);
  ASSERT_EQ(r.size(), 1U) << got;
  EXPECT_EQ(r[0].body, "0123456789");
}

TEST_P(HttpProtocol, LargeBodyIsEchoedWhole) {
  Client c = connect();
  std::string body(300 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
  const auto r = split_responses(c.receive_until(has_responses(1)));
  ASSERT_EQ(r.size(), 1U);
  EXPECT_TRUE(r[0].body == body);
}

TEST_P(HttpProtocol, MalformedRequestLineGives400) {
  expect_error_then_close("GARBAGE\r\n\r\n", 400);
  expect_error_then_close("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400);
  expect_error_then_close("GET / HTTP/1.1\r\n\r\n", 400);  // no Host
  expect_error_then_close(std::string("\x16\x03\x01\x00\xa5\x01", 6), 400);
}

TEST_P(HttpProtocol, OversizedHeadersGive431) {
  expect_error_then_close(
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", 431);
}

TEST_P(HttpProtocol, UnknownVersionGives505) {
  expect_error_then_close("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
  expect_error_then_close("GET / HTTP/0.9\r\n\r\n", 505);
}

TEST_P(HttpProtocol, ChunkedAndOversizedBodiesAreRefused) {
  expect_error_then_close("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                          501);
  expect_error_then_close("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                          413);
}

TEST_P(HttpProtocol, ErrorAfterGoodRequestsInOnePipeline) {
  Client c = connect();
  ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\nGET / HTTP/1.1\r\n\r\n"));
  const auto got = c.receive_all();
  EXPECT_TRUE(c.eof());
  const auto r = split_responses(got);
  ASSERT_EQ(r.size(), 2U) << got;
  EXPECT_EQ(r[0].status, 200);
  EXPECT_EQ(r[1].status, 400);
}

TEST_P(HttpProtocol, ServerSurvivesManyBadConnections) {
  for (int i = 0; i < 50; ++i) {
    Client c = connect();
    std::string junk(64 + i * 7, '\0');
    for (std::size_t j = 0; j < junk.size(); ++j) junk[j] = static_cast<char>((i * 31 + j * 17));
    (void)c.send(junk + "\r\n\r\n");
    (void)c.receive_all(5s);
  }
  Client c = connect();
  ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto r = split_responses(c.receive_until(has_responses(1)));
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].body, "ok\n");
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpProtocol, ::testing::ValuesIn(backends),
                         [](const auto& info) { return info.param; });

}  // namespace

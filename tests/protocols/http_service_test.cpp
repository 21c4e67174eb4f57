// Unit tests of the http_server sample's routing and response formatting.
#include "samples/http/http_service.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

std::string answer(const std::string& text) {
  http::Request req;
  const auto r = http::parse_request({text.data(), text.size()}, req);
  EXPECT_EQ(r.status, http::ParseStatus::complete) << text;
  std::string out;
  http::respond(req, out);
  return out;
}

std::string body_of(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

TEST(HttpService, RootAnswers200WithExactLength) {
  const std::string out = answer("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << out;
  const std::string body = body_of(out);
  EXPECT_EQ(body, "Hello from reactor http_server\n");
  EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nDate: "), std::string::npos);
  EXPECT_EQ(out.find("Connection:"), std::string::npos) << "1.1 keep-alive is the default";
}

TEST(HttpService, HeadHasTheHeadersButNoBody) {
  const std::string out = answer("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0U);
  EXPECT_NE(out.find("Content-Length: 31\r\n"), std::string::npos) << out;
  EXPECT_EQ(body_of(out), "");
}

TEST(HttpService, FixedPathsAndQueries) {
  EXPECT_EQ(body_of(answer("GET /health?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")), "ok\n");
  const std::string json = answer("GET /json HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(json.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_EQ(body_of(json), "{\"message\":\"Hello, World!\"}\n");
  EXPECT_EQ(answer("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n").rfind("HTTP/1.1 404 Not Found", 0), 0U);
}

TEST(HttpService, EchoReturnsThePostedBody) {
  const std::string out = answer("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nping");
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0U);
  EXPECT_EQ(body_of(out), "ping");
}

TEST(HttpService, WrongMethodGives405WithAllow) {
  const std::string out = answer("DELETE / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0U);
  EXPECT_NE(out.find("\r\nAllow: GET, HEAD\r\n\r\n"), std::string::npos) << out;
  EXPECT_EQ(body_of(out), "method not allowed\n");
}

TEST(HttpService, ConnectionFieldFollowsKeepAlive) {
  EXPECT_NE(answer("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                .find("\r\nConnection: close\r\n"),
            std::string::npos);
  EXPECT_NE(answer("GET / HTTP/1.0\r\n\r\n").find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_NE(answer("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .find("\r\nConnection: keep-alive\r\n"),
            std::string::npos);
}

TEST(HttpService, ErrorResponsesClose) {
  for (std::uint16_t status : {400, 413, 414, 431, 501, 505}) {
    std::string out;
    http::respond_error(status, out);
    const std::string line = "HTTP/1.1 " + std::to_string(status) + " ";
    EXPECT_EQ(out.rfind(line, 0), 0U) << out;
    EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos);
    const std::string body = body_of(out);
    EXPECT_EQ(body, std::string(http::reason_phrase(status)) + "\n");
    EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
              std::string::npos);
  }
  EXPECT_EQ(http::reason_phrase(431), "Request Header Fields Too Large");
}

}  // namespace

// Unit tests of the HTTP/1.x request parser used by the http_server sample.
#include "samples/http/http_parser.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace {

using http::ParseStatus;
using http::Request;

// The bytes the last parse() read; the parsed views point into them until the next parse().
std::unique_ptr<char[]> last_input;

// Parses `text` from an exactly-sized heap copy, so a read past the span trips ASan.
http::ParseResult parse(const std::string& text, Request& req, const http::Limits& limits = {}) {
  last_input = std::make_unique<char[]>(text.size());
  std::copy(text.begin(), text.end(), last_input.get());
  return http::parse_request({last_input.get(), text.size()}, req, limits);
}

std::uint16_t error_of(const std::string& text, const http::Limits& limits = {}) {
  Request req;
  const auto r = parse(text, req, limits);
  EXPECT_EQ(r.status, ParseStatus::error) << text;
  return r.status == ParseStatus::error ? r.status_code : 0;
}

const std::string simple = "GET /path?q=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n";

TEST(HttpParser, ParsesSimpleGet) {
  Request req;
  const auto r = parse(simple, req);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.consumed, simple.size());
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/path?q=1");
  EXPECT_EQ(req.version, http::Version::http11);
  ASSERT_EQ(req.header_count, 2U);
  EXPECT_EQ(req.headers[0].name, "Host");
  EXPECT_EQ(req.headers[0].value, "example");
  EXPECT_EQ(req.header("user-agent"), "t");
  EXPECT_TRUE(req.keep_alive);
  EXPECT_TRUE(req.body.empty());
}

TEST(HttpParser, EveryProperPrefixIsIncomplete) {
  const std::string text = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  Request req;
  for (std::size_t n = 0; n < text.size(); ++n) {
    const auto r = parse(text.substr(0, n), req);
    ASSERT_EQ(r.status, ParseStatus::incomplete) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.consumed, 0U);
  }
  const auto r = parse(text, req);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(req.body, "hello");
}

TEST(HttpParser, PipelinedRequestsAreConsumedOneAtATime) {
  const std::string two = simple + "GET /two HTTP/1.1\r\nHost: h\r\n\r\nGET /thr";
  Request req;
  auto r = parse(two, req);
  ASSERT_EQ(r.status, ParseStatus::complete);
  ASSERT_EQ(r.consumed, simple.size());
  const std::string rest = two.substr(r.consumed);
  r = parse(rest, req);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(req.target, "/two");
  EXPECT_EQ(parse(rest.substr(r.consumed), req).status, ParseStatus::incomplete);
}

TEST(HttpParser, AcceptsBareLineFeedsAndLeadingEmptyLines) {
  Request req;
  const std::string text = "\r\n\nGET / HTTP/1.1\nHost: h\n\n";
  const auto r = parse(text, req);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.consumed, text.size());
  EXPECT_EQ(req.target, "/");
}

TEST(HttpParser, TrimsBlanksAroundFieldValues) {
  Request req;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost:\t  h  \t\r\nX-Empty:\r\n\r\n", req).status,
            ParseStatus::complete);
  EXPECT_EQ(req.header("host"), "h");
  EXPECT_EQ(req.header("x-empty"), "");
}

TEST(HttpParser, KeepAliveDefaultsPerVersion) {
  Request req;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", req).status, ParseStatus::complete);
  EXPECT_EQ(req.version, http::Version::http10);
  EXPECT_FALSE(req.keep_alive);
  // What a Connection field makes of the version's default.
  const std::pair<const char*, bool> cases[] = {
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const auto& [text, keep_alive] : cases) {
    ASSERT_EQ(parse(text, req).status, ParseStatus::complete) << text;
    EXPECT_EQ(req.keep_alive, keep_alive) << text;
  }
}

TEST(HttpParser, UnknownMinorVersionIsAnsweredAsHttp11) {
  Request req;
  ASSERT_EQ(parse("GET / HTTP/1.7\r\nHost: h\r\n\r\n", req).status, ParseStatus::complete);
  EXPECT_EQ(req.version, http::Version::http11);
}

TEST(HttpParser, UnsupportedVersionsGive505) {
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(error_of("GET / HTTP/0.9\r\n\r\n"), 505);
  EXPECT_EQ(error_of("GET / HTTP/3.0\r\n"), 505) << "known as soon as the request line is";
}

TEST(HttpParser, MalformedRequestLinesGive400) {
  EXPECT_EQ(error_of("GET\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTX/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.x\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/11\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of(std::string("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
  EXPECT_EQ(error_of("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(HttpParser, ForeignProtocolIsRejectedBeforeTheLineEnds) {
  EXPECT_EQ(error_of(std::string("\x16\x03\x01\x02\x00", 5)), 400);
}

TEST(HttpParser, MalformedHeadersGive400) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(error_of(std::string("GET / HTTP/1.1\r\nHost: h\0x\r\n\r\n", 29)), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
}

TEST(HttpParser, Http11WithoutExactlyOneHostGives400) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(HttpParser, ContentLengthRules) {
  Request req;
  ASSERT_EQ(
      parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc", req)
          .status,
      ParseStatus::complete);
  EXPECT_EQ(req.body, "abc");
  EXPECT_EQ(
      error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
      400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n"), 400);
  EXPECT_EQ(
      error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
      413);
  http::Limits small;
  small.max_body = 10;
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", small), 413);
}

TEST(HttpParser, TransferEncodingIsRefused) {
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Length: 3\r\n\r\nabc"),
            400);
}

TEST(HttpParser, OversizedHeadGives431) {
  http::Limits limits;
  limits.max_head = 256;
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(300, 'a');
  EXPECT_EQ(error_of(head, limits), 431) << "no need to wait for the line end";
  EXPECT_EQ(error_of(head + "\r\n\r\n", limits), 431);
  // Just under the limit is fine.
  Request req;
  std::string fits = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  fits += std::string(limits.max_head - fits.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), limits.max_head);
  EXPECT_EQ(parse(fits, req, limits).status, ParseStatus::complete);
}

TEST(HttpParser, TooManyFieldsGive431) {
  std::string text = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) text += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(error_of(text + "\r\n"), 431);
  http::Limits limits;
  limits.max_headers = 3;
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
}

TEST(HttpParser, OverlongRequestLineGives414) {
  http::Limits limits;
  limits.max_request_line = 64;
  const std::string line = "GET /" + std::string(100, 'x');
  EXPECT_EQ(error_of(line, limits), 414);
  EXPECT_EQ(error_of(line + " HTTP/1.1\r\nHost: h\r\n\r\n", limits), 414);
}

TEST(HttpParser, EmptyInputIsIncomplete) {
  Request req;
  EXPECT_EQ(parse("", req).status, ParseStatus::incomplete);
  EXPECT_EQ(parse("\r\n", req).status, ParseStatus::incomplete);
}

TEST(HttpParser, IequalsIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(http::iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(http::iequals("close", "closed"));
  EXPECT_FALSE(http::iequals("@", "`"));
}

}  // namespace

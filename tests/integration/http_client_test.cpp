// http_server against real clients: curl (paths, HEAD, POST, keep-alive reuse) and a short
// bounded wrk run, on each of select, poll and epoll, with one thread and with --threads 2 (a
// ReactorPool, one SO_REUSEPORT listener per reactor). Also: the banner, and exit 0 on signals.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "sample_process.hpp"

namespace {

using namespace sample_test;

class HttpClient : public SampleServerTest<ServerConfig> {
 protected:
  HttpClient() : SampleServerTest("HTTP_SERVER") {}
  [[nodiscard]] std::string base() const {
    return "http://127.0.0.1:" + std::to_string(server_->port());
  }
  RunResult curl(std::vector<std::string> args) {
    args.insert(args.begin(), {"curl", "--silent", "--show-error", "--max-time", "10"});
    return run(args, 15s);
  }
};

TEST_P(HttpClient, BannerHasTheExactForm) {
  EXPECT_EQ(server_->banner(),
            "http_server listening on 127.0.0.1:" + std::to_string(server_->port()) + " (backend " +
                GetParam().backend + ")" + GetParam().banner_suffix());
}

TEST_P(HttpClient, CurlGetsTheFixedPaths) {
  auto r = curl({base() + "/"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "Hello from reactor http_server\n");
  r = curl({base() + "/json"});
  EXPECT_EQ(r.output, "{\"message\":\"Hello, World!\"}\n");
  r = curl({"--write-out", "%{http_code}", "--output", "/dev/null", base() + "/health"});
  EXPECT_EQ(r.output, "200");
  r = curl({"--write-out", "%{http_code}", "--output", "/dev/null", base() + "/missing"});
  EXPECT_EQ(r.output, "404");
}

TEST_P(HttpClient, CurlHeadAndPost) {
  auto r = curl({"--head", base() + "/"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << r.output;
  EXPECT_NE(r.output.find("Content-Length: 31\r\n"), std::string::npos) << r.output;
  r = curl({"--data-binary", "posted body", base() + "/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "posted body");
  r = curl({"--write-out", "%{http_code}", "--output", "/dev/null", "-X", "DELETE", base() + "/"});
  EXPECT_EQ(r.output, "405");
}

TEST_P(HttpClient, CurlReusesTheKeepAliveConnection) {
  const auto r = curl({"--verbose", base() + "/", base() + "/json", base() + "/health"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::size_t reused = 0;
  for (auto at = r.output.find("Re-using existing connection"); at != std::string::npos;
       at = r.output.find("Re-using existing connection", at + 1)) {
    ++reused;
  }
  EXPECT_EQ(reused, 2U) << r.output;
  EXPECT_NE(r.output.find("ok\n"), std::string::npos);
}

TEST_P(HttpClient, CurlHttp10ClosesAfterTheResponse) {
  const auto r = curl({"--http1.0", "--verbose", base() + "/"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("< Connection: close"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Hello from reactor"), std::string::npos);
}

TEST_P(HttpClient, BoundedWrkRunHasNoErrors) {
  // Under a sanitizer the server is several times slower; a shorter run still proves the point.
  const std::string duration = sanitized ? "1s" : "2s";
  if (sanitized) std::cout << "[ NOTE ] sanitizer build: wrk run shortened to " << duration << "\n";
  const auto r = run({"wrk", "-t1", "-c8", "-d" + duration, "--timeout", "5s", base() + "/"}, 30s);
  std::cout << "[ wrk " << config_name(GetParam()) << " ]\n" << r.output << std::flush;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto at = r.output.find(" requests in ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const auto begin = r.output.find_last_not_of("0123456789", at - 1) + 1;
  ASSERT_LT(begin, at) << r.output;
  EXPECT_GT(std::stol(r.output.substr(begin, at - begin)), 100)
      << "a 1-2 s run on loopback serves far more than this";
  EXPECT_EQ(r.output.find("Non-2xx"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Socket errors"), std::string::npos) << r.output;
  // The server survived the load.
  EXPECT_EQ(curl({base() + "/health"}).output, "ok\n");
}

TEST_P(HttpClient, ExitsZeroOnSigterm) {
  EXPECT_EQ(curl({base() + "/health"}).output, "ok\n");
  EXPECT_EQ(server_->stop(SIGTERM), 0);
}

TEST_P(HttpClient, ExitsZeroOnSigintWithAnOpenConnection) {
  Client idle = connect();
  ASSERT_TRUE(idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto got =
      idle.receive_until([](const std::string& s) { return s.find("ok\n") != std::string::npos; });
  ASSERT_NE(got.find("ok\n"), std::string::npos);
  EXPECT_EQ(server_->stop(SIGINT), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpClient, ::testing::ValuesIn(server_configs({1, 2})),
                         [](const auto& info) { return config_name(info.param); });

}  // namespace

// kv_server against real clients: redis-cli (every required command, error replies) and a
// bounded redis-benchmark run (pipelined SET/GET/INCR, then the INCR count is checked), on each
// of select, poll and epoll, with one thread and with --threads 2 (a ReactorPool; connections
// handed to the reactors in turn, so redis-benchmark's 20 clients hit one store from two threads
// and the INCR count shows whether any increment was lost). Also: the banner, and exit 0 on
// signals.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "sample_process.hpp"

namespace {

using namespace sample_test;

class KvClient : public SampleServerTest<ServerConfig> {
 protected:
  KvClient() : SampleServerTest("KV_SERVER") {}
  // One redis-cli command; returns its output in the tty-style format (--no-raw).
  std::string cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"redis-cli", "-h", "127.0.0.1", "-p",
                               std::to_string(server_->port()), "--no-raw"});
    const auto r = run(args, 15s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }
};

TEST_P(KvClient, BannerHasTheExactForm) {
  EXPECT_EQ(server_->banner(),
            "kv_server listening on 127.0.0.1:" + std::to_string(server_->port()) + " (backend " +
                GetParam().backend + ")" + GetParam().banner_suffix());
}

TEST_P(KvClient, RedisCliBasicCommands) {
  EXPECT_EQ(cli({"PING"}), "PONG\n");
  EXPECT_EQ(cli({"ECHO", "hello world"}), "\"hello world\"\n");
  EXPECT_EQ(cli({"SET", "greeting", "hi there"}), "OK\n");
  EXPECT_EQ(cli({"GET", "greeting"}), "\"hi there\"\n");
  EXPECT_EQ(cli({"GET", "missing"}), "(nil)\n");
  EXPECT_EQ(cli({"EXISTS", "greeting", "missing", "greeting"}), "(integer) 2\n");
  EXPECT_EQ(cli({"DEL", "greeting", "missing"}), "(integer) 1\n");
  EXPECT_EQ(cli({"EXISTS", "greeting"}), "(integer) 0\n");
}

TEST_P(KvClient, RedisCliCountersAndMultiKey) {
  EXPECT_EQ(cli({"INCR", "n"}), "(integer) 1\n");
  EXPECT_EQ(cli({"INCR", "n"}), "(integer) 2\n");
  EXPECT_EQ(cli({"DECR", "n"}), "(integer) 1\n");
  EXPECT_EQ(cli({"MSET", "a", "1", "b", "2"}), "OK\n");
  EXPECT_EQ(cli({"MGET", "a", "nope", "b"}), "1) \"1\"\n2) (nil)\n3) \"2\"\n");
}

TEST_P(KvClient, RedisCliExpiry) {
  EXPECT_EQ(cli({"SET", "short", "v", "PX", "100000"}), "OK\n");
  const auto pttl = cli({"PTTL", "short"});
  ASSERT_EQ(pttl.rfind("(integer) ", 0), 0U) << pttl;
  const long left = std::stol(pttl.substr(10));
  EXPECT_GT(left, 90000);
  EXPECT_LE(left, 100000);
  EXPECT_EQ(cli({"SET", "long", "v", "EX", "100"}), "OK\n");
  EXPECT_EQ(cli({"TTL", "long"}), "(integer) 100\n");
  // Expiry itself, with a bounded wait on the condition rather than a sleep.
  EXPECT_EQ(cli({"SET", "gone", "v", "PX", "50"}), "OK\n");
  const auto deadline = Clock::now() + 5s;
  std::string got;
  while (Clock::now() < deadline && (got = cli({"GET", "gone"})) != "(nil)\n") {
  }
  EXPECT_EQ(got, "(nil)\n");
}

TEST_P(KvClient, RedisCliErrorReplies) {
  EXPECT_EQ(cli({"NOSUCHCMD", "x"}), "(error) ERR unknown command 'NOSUCHCMD'\n");
  EXPECT_EQ(cli({"GET"}), "(error) ERR wrong number of arguments for 'GET'\n");
  EXPECT_EQ(cli({"SET", "s", "text"}), "OK\n");
  EXPECT_EQ(cli({"INCR", "s"}), "(error) ERR value is not a 64-bit integer\n");
  EXPECT_EQ(cli({"SET", "big", "9223372036854775807"}), "OK\n");
  EXPECT_EQ(cli({"INCR", "big"}), "(error) ERR increment or decrement would overflow\n");
  EXPECT_EQ(cli({"SET", "k", "v", "EX", "0"}), "(error) ERR invalid expire time for 'set'\n");
}

TEST_P(KvClient, RedisCliPipeMode) {
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "p" + std::to_string(i);
    input += "*3\r\n$3\r\nSET\r\n$" + std::to_string(k.size()) + "\r\n" + k + "\r\n$1\r\nv\r\n";
  }
  const auto r = run({"redis-cli", "-p", std::to_string(server_->port()), "--pipe"}, 20s, input);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("errors: 0, replies: 1000"), std::string::npos) << r.output;
  EXPECT_EQ(cli({"DBSIZE"}), "(integer) 1000\n");
}

TEST_P(KvClient, BoundedRedisBenchmark) {
  // Under a sanitizer the server is several times slower; fewer requests still prove the point.
  const int requests = sanitized ? 2000 : 20000;
  if (sanitized) std::cout << "[ NOTE ] sanitizer build: redis-benchmark shortened to -n 2000\n";
  const auto r =
      run({"redis-benchmark", "-h", "127.0.0.1", "-p", std::to_string(server_->port()), "-n",
           std::to_string(requests), "-c", "20", "-P", "16", "-q", "-t", "set,get,incr"},
          60s);
  // -q rewrites a progress line with CRs; keep the final "<TEST>: <n> requests per second" lines.
  std::string shown;
  for (const std::string test : {"SET: ", "GET: ", "INCR: "}) {
    std::string found;
    std::size_t from = 0;
    while (from < r.output.size()) {
      const auto end = std::min(r.output.find_first_of("\r\n", from), r.output.size());
      const std::string line = r.output.substr(from, end - from);
      if (line.rfind(test, 0) == 0 && line.find(" requests per second") != std::string::npos &&
          line.find("rps=") == std::string::npos) {
        found = line;
      }
      from = end + 1;
    }
    EXPECT_FALSE(found.empty()) << test << "missing:\n" << r.output;
    shown += found + "\n";
  }
  std::cout << "[ redis-benchmark " << config_name(GetParam()) << " ]\n" << shown << std::flush;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("ERR"), std::string::npos) << r.output;
  // Without -r redis-benchmark increments one literal key: every INCR must have been applied
  // exactly once, in spite of 20 clients pipelining 16 at a time.
  EXPECT_EQ(cli({"GET", "counter:__rand_int__"}), "\"" + std::to_string(requests) + "\"\n");
}

TEST_P(KvClient, ExitsZeroOnSigterm) {
  EXPECT_EQ(cli({"PING"}), "PONG\n");
  EXPECT_EQ(server_->stop(SIGTERM), 0);
}

TEST_P(KvClient, ExitsZeroOnSigintWithAnOpenConnection) {
  Client idle = connect();
  ASSERT_TRUE(idle.send("PING\r\n"));
  EXPECT_EQ(idle.receive_until([](const std::string& s) { return s.size() >= 7; }), "+PONG\r\n");
  EXPECT_EQ(server_->stop(SIGINT), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, KvClient, ::testing::ValuesIn(server_configs({1, 2})),
                         [](const auto& info) { return config_name(info.param); });

}  // namespace

// Fault injection against the sample servers' binaries, run as child processes on loopback:
// descriptor exhaustion (under prlimit), a storm of peer resets, and oversized requests and lines.
// Each test checks that the server survives, answers a new client afterwards, and gives back the
// descriptors it took. The binaries come from the environment (ECHO_SERVER, HTTP_SERVER,
// CHAT_SERVER, KV_SERVER), set by tests/faults/meson.build.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fault_support.hpp"

namespace faults {
namespace {

std::vector<std::string> with_port0(std::vector<std::string> argv) {
  argv.insert(argv.end(), {"--port", "0"});
  return argv;
}

bool have_prlimit() {
  return ::access("/usr/bin/prlimit", X_OK) == 0 || ::access("/bin/prlimit", X_OK) == 0;
}

// ---- descriptor exhaustion ---------------------------------------------------------------------

TEST(ServerFaults, EchoSurvivesDescriptorExhaustionWithoutSpinning) {
  if (!have_prlimit()) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  constexpr int server_fds = 64;
  constexpr int clients = 150;  // well over what the server can hold
  rlimit ours{};
  ::getrlimit(RLIMIT_NOFILE, &ours);
  if (ours.rlim_cur < clients + 64) GTEST_SKIP() << "this process may open too few descriptors";
  REQUIRE_BINARY(echo_server_path, "ECHO_SERVER");
  const std::string limit = std::to_string(server_fds);
  ServerProcess server(
      with_port0({"prlimit", "--nofile=" + limit + ":" + limit, echo_server_path}));
  ASSERT_STARTED(server);
  const int base_fds = fd_count(server.pid());
  ASSERT_GT(base_fds, 0);
  // One connection served and closed first. Besides checking the server works, this matters
  // under UBSan: its vptr check inspects memory through a pipe the first time it meets a type,
  // and with no descriptor left it reports a false "invalid vptr" on the first connection freed.
  {
    Client warm(server.port());
    ASSERT_TRUE(echoes(warm, "warm-up"));
  }
  ASSERT_LE(
      wait_for([&] { return fd_count(server.pid()); }, [&](int n) { return n <= base_fds; }, 10s),
      base_fds);

  // Every connect succeeds (the kernel completes handshakes into the backlog); the server accepts
  // until it runs out of descriptors.
  std::vector<Client> conns;
  for (int i = 0; i < clients; ++i) {
    conns.emplace_back(server.port());
    ASSERT_TRUE(conns.back().connected()) << "connect " << i;
  }
  ASSERT_TRUE(echoes(conns.front(), "first")) << "an accepted connection must still be served";
  const int at_limit = wait_for([&] { return fd_count(server.pid()); },
                                [&](int n) { return n >= server_fds - 2; }, 10s);
  EXPECT_GE(at_limit, server_fds - 2) << "the server never reached its descriptor limit";

  // Out of descriptors with connections still pending: the listener stays readable. A server that
  // spins on it is runnable all the time; one that backs off sleeps in the demultiplexer.
  const long long run0 = runnable_ns(server.pid());
  const long cpu0 = cpu_ticks(server.pid());
  const auto t0 = Clock::now();
  ::poll(nullptr, 0, 1000);  // the measurement interval, not a synchronisation
  const long long run1 = runnable_ns(server.pid());
  const long cpu1 = cpu_ticks(server.pid());
  const double wall_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  const double cpu_share = static_cast<double>(cpu1 - cpu0) /
                           static_cast<double>(sysconf(_SC_CLK_TCK)) / (wall_ns / 1e9);
  std::printf("fd exhaustion: server at %d fds (limit %d); over 1 s it used %.1f%% CPU", at_limit,
              server_fds, 100.0 * cpu_share);
  if (run0 >= 0 && run1 >= 0) {
    const double runnable = static_cast<double>(run1 - run0) / wall_ns;
    std::printf(" and was runnable %.1f%% of the time\n", 100.0 * runnable);
    EXPECT_LT(runnable, 0.25) << "the server spins on a listener it cannot accept from";
  } else {
    std::printf("\n");
  }
  EXPECT_LT(cpu_share, 0.25) << "the server spins on a listener it cannot accept from";
  ASSERT_TRUE(server.running());

  // Close the first 100: the pending ones get accepted and served, and so does a new client.
  conns.erase(conns.begin(), conns.begin() + 100);
  EXPECT_TRUE(echoes(conns.back(), "from the backlog", 15s))
      << "a connection that waited in the backlog is served once descriptors are free";
  conns.clear();
  Client fresh(server.port());
  EXPECT_TRUE(echoes(fresh, "fresh"));
  fresh.close();
  const int after =
      wait_for([&] { return fd_count(server.pid()); }, [&](int n) { return n <= base_fds; }, 10s);
  EXPECT_LE(after, base_fds) << "descriptors leaked: " << base_fds << " before, " << after
                             << " after";
  EXPECT_EQ(server.stop(), 0);
}

// ---- peer reset storm --------------------------------------------------------------------------

// Opens `rounds` x 100 connections, sends each `request` (so the server has a reply to write when
// the reset hits) and resets them all with SO_LINGER 0; then checks the server.
void reset_storm(ServerProcess& server, const std::string& request, const std::string& probe,
                 const std::string& expect_prefix) {
  const int base_fds = fd_count(server.pid());
  ASSERT_GT(base_fds, 0);
  const int rounds = sanitized ? 2 : 10;
  if (sanitized)
    std::printf("sanitized build: reset storm shortened to %d00 connections\n", rounds);
  int opened = 0;
  for (int round = 0; round < rounds; ++round) {
    std::vector<Client> conns;
    for (int i = 0; i < 100; ++i) {
      conns.emplace_back(server.port());
      if (!conns.back().connected()) continue;
      ++opened;
      (void)conns.back().send(request);
    }
    for (auto& c : conns) c.reset();
  }
  EXPECT_EQ(opened, rounds * 100);
  ASSERT_TRUE(server.running()) << "the server died in the reset storm (SIGPIPE?)";
  Client fresh(server.port());
  ASSERT_TRUE(fresh.connected());
  ASSERT_TRUE(fresh.send(probe));
  const std::string reply = fresh.receive(expect_prefix.size());
  EXPECT_EQ(reply, expect_prefix);
  fresh.close();
  const int after =
      wait_for([&] { return fd_count(server.pid()); }, [&](int n) { return n <= base_fds; }, 10s);
  EXPECT_LE(after, base_fds) << "descriptors leaked after " << opened << " resets";
  std::printf("reset storm: %d connections reset; server fds %d before, %d after\n", opened,
              base_fds, after);
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServerFaults, EchoSurvivesPeerResetStorm) {
  REQUIRE_BINARY(echo_server_path, "ECHO_SERVER");
  ServerProcess server(with_port0({echo_server_path}));
  ASSERT_STARTED(server);
  // 256 KiB each: more than the socket buffers hold, so the server is mid-write at the reset.
  reset_storm(server, std::string(256 * 1024, 'r'), "alive?", "alive?");
}

TEST(ServerFaults, HttpSurvivesPeerResetStorm) {
  REQUIRE_BINARY(http_server_path, "HTTP_SERVER");
  ServerProcess server(with_port0({http_server_path}));
  ASSERT_STARTED(server);
  std::string pipelined;
  for (int i = 0; i < 50; ++i) pipelined += "GET /json HTTP/1.1\r\nHost: a\r\n\r\n";
  reset_storm(server, pipelined, "GET /health HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200");
}

// ---- oversized requests and lines --------------------------------------------------------------

// Sends `request` on a new connection; returns the reply and whether the server then closed.
std::pair<std::string, bool> answer_then_close(int port, const std::string& request) {
  Client c(port);
  if (!c.connected()) return {"(connect failed)", false};
  (void)c.send(request);  // the server may close before taking it all: that is fine
  std::string reply = c.receive_all(10s);
  return {reply, c.eof()};
}

TEST(ServerFaults, HttpAnswersOversizedRequestsAndCloses) {
  REQUIRE_BINARY(http_server_path, "HTTP_SERVER");
  ServerProcess server(with_port0({http_server_path}));
  ASSERT_STARTED(server);
  const int base_fds = fd_count(server.pid());
  std::string many_headers = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 300; ++i)
    many_headers += "X-Pad-" + std::to_string(i) + ": " + std::string(80, 'p') + "\r\n";
  many_headers += "\r\n";
  const struct {
    const char* what;
    std::string request;
    const char* status;
  } cases[] = {
      {"24 KiB of header fields", many_headers, "HTTP/1.1 431"},
      {"1 MiB header value without a line end", "GET / HTTP/1.1\r\nX: " + std::string(1 << 20, 'v'),
       "HTTP/1.1 431"},
      {"16 KiB request target", "GET /" + std::string(16384, 't') + " HTTP/1.1\r\n\r\n",
       "HTTP/1.1 414"},
      {"2 MB Content-Length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
       "HTTP/1.1 413"},
  };
  for (const auto& k : cases) {
    const auto [reply, closed] = answer_then_close(server.port(), k.request);
    EXPECT_EQ(reply.substr(0, 12), k.status) << k.what << ": " << reply.substr(0, 80);
    EXPECT_TRUE(closed) << k.what << ": the server must close after the error";
  }
  Client fresh(server.port());
  ASSERT_TRUE(fresh.send("GET /health HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(fresh.receive(12), "HTTP/1.1 200");
  fresh.close();
  const int after =
      wait_for([&] { return fd_count(server.pid()); }, [&](int n) { return n <= base_fds; }, 10s);
  EXPECT_LE(after, base_fds);
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServerFaults, KvAnswersOversizedBulkAndCloses) {
  REQUIRE_BINARY(kv_server_path, "KV_SERVER");
  ServerProcess server(with_port0({kv_server_path}));
  ASSERT_STARTED(server);
  const auto [reply, closed] = answer_then_close(
      server.port(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n" + std::string(4096, 'b'));
  EXPECT_EQ(reply.substr(0, 4), "-ERR") << reply.substr(0, 80);
  EXPECT_TRUE(closed);
  Client fresh(server.port());
  ASSERT_TRUE(fresh.send("*1\r\n$4\r\nPING\r\n"));
  EXPECT_EQ(fresh.receive(7), "+PONG\r\n");
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServerFaults, ChatDisconnectsAnEndlessLineAndTheRoomGoesOn) {
  REQUIRE_BINARY(chat_server_path, "CHAT_SERVER");
  ServerProcess server(with_port0({chat_server_path}));
  ASSERT_STARTED(server);
  Client talker(server.port());
  Client listener(server.port());
  Client flooder(server.port());
  // Each gets its welcome line first; reading it also proves all three joined.
  for (Client* c : {&talker, &listener, &flooder}) {
    const std::string welcome = c->receive(14);  // "welcome userN\n" (N is one digit here)
    ASSERT_EQ(welcome.substr(0, 12), "welcome user") << welcome;
  }
  // 1 MiB without a newline: over the server's 8 KiB line limit.
  (void)flooder.send(std::string(1 << 20, 'x'));
  (void)flooder.receive_all(10s);
  EXPECT_TRUE(flooder.eof()) << "the flooding client must be disconnected";
  ASSERT_TRUE(talker.send("still here\n"));
  const std::string line = listener.receive(18);  // "userN: still here\n"
  EXPECT_NE(line.find(": still here\n"), std::string::npos) << line.substr(0, 200);
  EXPECT_EQ(line.find("xxxx"), std::string::npos) << "no part of the endless line is broadcast";
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace faults

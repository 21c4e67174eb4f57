// echo_server and echo_client as whole programs, on select, poll and epoll, each with one thread
// (one Reactor), with --threads 2 (a ReactorPool, one SO_REUSEPORT listener per reactor) and with
// --threads 2 --model tp (the same services on one ThreadPoolReactor): the
// banner, real clients (nc, socat, echo_client), clean exit on SIGINT / SIGTERM, byte-exact echo
// for 1,000 concurrent connections, connections spread over every reactor, a burst of peer
// resets, bounded memory with a reader that never reads, and descriptor exhaustion (a lowered
// RLIMIT_NOFILE) from which the server recovers.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <regex>

#include "sample_process.hpp"

namespace sample_test {
namespace {

class EchoSample : public SampleServerTest<ServerConfig> {
 protected:
  EchoSample() : SampleServerTest("ECHO_SERVER", false) {}
  std::string client_path() const { return env("ECHO_CLIENT"); }
};

// Drives `fds` (non-blocking, one payload each) until every echo is complete, or the deadline.
// Returns how many connections got every byte back, in order.
int pump_all(const std::vector<int>& fds, const std::vector<std::string>& out,
             std::chrono::milliseconds limit) {
  const std::size_t n = fds.size();
  std::vector<std::size_t> sent(n, 0);
  std::vector<std::string> in(n);
  std::vector<bool> done(n, false);
  std::size_t left = n;
  const auto deadline = Clock::now() + limit;
  std::vector<pollfd> pfds(n);
  char buf[65536];
  while (left > 0 && Clock::now() < deadline) {
    for (std::size_t i = 0; i < n; ++i) {
      pfds[i] = {done[i] ? -1 : fds[i],
                 static_cast<short>(POLLIN | (sent[i] < out[i].size() ? POLLOUT : 0)), 0};
    }
    if (::poll(pfds.data(), n, ms_left(deadline)) <= 0) break;
    for (std::size_t i = 0; i < n; ++i) {
      if (done[i] || pfds[i].revents == 0) continue;
      if ((pfds[i].revents & POLLOUT) != 0 && sent[i] < out[i].size()) {
        const ssize_t w =
            ::send(fds[i], out[i].data() + sent[i],
                   std::min<std::size_t>(out[i].size() - sent[i], 16384), MSG_NOSIGNAL);
        if (w > 0) sent[i] += static_cast<std::size_t>(w);
      }
      if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t r = ::recv(fds[i], buf, sizeof buf, 0);
        if (r > 0) in[i].append(buf, static_cast<std::size_t>(r));
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          done[i] = true;  // closed early: counts as a failure below
          --left;
          continue;
        }
      }
      if (in[i].size() >= out[i].size()) {
        done[i] = true;
        --left;
      }
    }
  }
  int good = 0;
  for (std::size_t i = 0; i < n; ++i) good += in[i] == out[i] ? 1 : 0;
  return good;
}

TEST_P(EchoSample, BannerRealClientsAndCleanExitOnSigterm) {
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0) << "banner: " << server.banner();
  EXPECT_TRUE(std::regex_match(server.banner(),
                               std::regex("echo_server listening on 127\\.0\\.0\\.1:[0-9]+ "
                                          "\\(backend " +
                                          backend() + "\\)" + GetParam().banner_suffix())))
      << server.banner();
  const std::string port = std::to_string(server.port());
  auto nc = run({"nc", "-N", "127.0.0.1", port}, 10s, "hello over nc\n");
  EXPECT_EQ(nc.exit_code, 0) << nc.output;
  EXPECT_EQ(nc.output, "hello over nc\n");
  auto socat = run({"socat", "-t", "5", "-", "TCP:127.0.0.1:" + port}, 10s, "hello over socat\n");
  EXPECT_EQ(socat.exit_code, 0) << socat.output;
  EXPECT_EQ(socat.output, "hello over socat\n");
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

TEST_P(EchoSample, EchoClientVerifiesEveryEchoAndServerExitsOnSigint) {
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0) << "banner: " << server.banner();
  const int messages = sanitized ? 20 : 100;
  auto client =
      run({client_path(), "--port", std::to_string(server.port()), "--connections", "50",
           "--messages", std::to_string(messages), "--size", "3000", "--backend", backend()},
          30s);
  EXPECT_EQ(client.exit_code, 0) << client.output;
  EXPECT_NE(client.output.find("0 failed, 0 mismatched"), std::string::npos) << client.output;
  EXPECT_NE(client.output.find("-> OK"), std::string::npos) << client.output;
  EXPECT_EQ(server.stop(SIGINT), 0);
}

TEST_P(EchoSample, EchoClientFailsAgainstAServerThatIsNotThere) {
  // A port nobody listens on: the client must say so and exit non-zero (its check can fail).
  int port = 0;
  {
    ServerProcess& server = start();
    port = server.port();
    ASSERT_GT(port, 0);
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  auto client = run({client_path(), "--port", std::to_string(port), "--connections", "2",
                     "--messages", "1", "--timeout", "5"},
                    20s);
  EXPECT_EQ(client.exit_code, 1) << client.output;
  EXPECT_NE(client.output.find("FAILED"), std::string::npos) << client.output;
}

TEST_P(EchoSample, ThousandConcurrentConnectionsGetEveryByteBackInOrder) {
  raise_fd_limit();
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0);
  const int n = 1000;
  const std::size_t max_size = sanitized ? 4096 : 32768;
  std::vector<int> fds;
  std::vector<std::string> out;
  std::uint32_t seed = 42;
  for (int i = 0; i < n; ++i) {
    const int fd = connect_nonblocking(server.port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    seed = seed * 1103515245U + 12345U;
    out.push_back(random_bytes(1 + seed % max_size, seed));
  }
  const int good = pump_all(fds, out, 45s);
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(good, n);
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

TEST_P(EchoSample, BurstOfPeerResetsLeavesTheServerServing) {
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0);
  for (int round = 0; round < 4; ++round) {
    std::vector<int> fds;
    for (int i = 0; i < 100; ++i) {
      const int fd = connect_nonblocking(server.port());
      ASSERT_GE(fd, 0);
      fds.push_back(fd);
    }
    // Make sure each connection is established and has data in flight both ways, then reset.
    std::vector<std::string> out(fds.size(), std::string(20000, 'r'));
    ASSERT_EQ(pump_all(fds, out, 20s), static_cast<int>(fds.size()));
    const std::string more(100000, 'm');
    for (int fd : fds) {
      (void)::send(fd, more.data(), more.size(), MSG_NOSIGNAL);
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(fd);  // RST, with unread data and echoes still coming
    }
  }
  ASSERT_TRUE(server.running());
  Client c = connect();
  ASSERT_TRUE(c.send("still alive"));
  EXPECT_EQ(c.receive_until([](const std::string& s) { return s.size() >= 11; }), "still alive");
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

TEST_P(EchoSample, ReaderThatNeverReadsCannotGrowServerMemory) {
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0);
  const long rss_before = server.rss_kib();
  const int fd = connect_nonblocking(server.port());
  ASSERT_GE(fd, 0);
  // Write until the server stops taking bytes (its queue is at the high mark and it stopped
  // reading us): no progress for a while, bounded by the deadline.
  const std::string chunk(65536, 'z');
  std::size_t sent = 0;
  auto last_progress = Clock::now();
  const auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline && Clock::now() - last_progress < 500ms) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t w = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (w > 0) {
      sent += static_cast<std::size_t>(w);
      last_progress = Clock::now();
    }
  }
  const long rss_after = server.rss_kib();
  ::close(fd);
  std::printf(
      "[ measure  ] %s: client pushed %zu KiB before the server stopped reading; "
      "server RSS %ld -> %ld KiB\n",
      config_name(GetParam()).c_str(), sent / 1024, rss_before, rss_after);
  // Socket buffers on both sides plus the 1 MiB high watermark: a few MiB at most. An
  // unbounded server would have taken everything we offered for as long as we offered it.
  EXPECT_LT(sent, 64U * 1024 * 1024);
  EXPECT_LT(rss_after - rss_before, 24 * 1024);
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

TEST_P(EchoSample, DescriptorExhaustionBacksOffWithoutSpinningThenServesAgain) {
  ServerProcess& server = start({"--max-fds", "32"});
  ASSERT_GT(server.port(), 0) << server.banner();
  const int n = 60;  // more than the server can hold open at once
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    const int fd = connect_nonblocking(server.port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  // Each client sends one byte; only those the server could accept get it back. Collect for a
  // fixed window, which is also the window in which the server's CPU use is measured.
  std::vector<bool> served(n, false);
  std::vector<bool> sent(n, false);
  // With `recycle`, a served client is closed at once so its descriptor frees a slot for the
  // next one waiting in the backlog.
  auto collect = [&](std::chrono::milliseconds window, bool recycle) {
    const auto until = Clock::now() + window;
    while (Clock::now() < until) {
      std::vector<pollfd> p;
      for (int i = 0; i < n; ++i) {
        p.push_back({fds[i] < 0 ? -1 : fds[i], static_cast<short>(sent[i] ? POLLIN : POLLOUT), 0});
      }
      if (::poll(p.data(), p.size(), std::min(ms_left(until), 50)) < 0) break;
      for (int i = 0; i < n; ++i) {
        if (p[i].revents == 0) continue;
        if (!sent[i]) {
          sent[i] = ::send(fds[i], "x", 1, MSG_NOSIGNAL) == 1;
          continue;
        }
        char c;
        if (::recv(fds[i], &c, 1, 0) == 1 && c == 'x') {
          served[i] = true;
          if (recycle) {
            ::close(fds[i]);
            fds[i] = -1;
          }
        }
      }
      if (recycle && std::count(served.begin(), served.end(), true) == n) return;
    }
  };
  const long cpu_before = server.cpu_ticks();
  collect(1500ms, false);
  const long cpu_used = server.cpu_ticks() - cpu_before;
  const auto served_while_exhausted = std::count(served.begin(), served.end(), true);
  std::printf(
      "[ measure  ] %s: %ld of %d served under a 32-fd limit; server CPU %ld ticks "
      "(of %ld per second) in 1.5 s\n",
      config_name(GetParam()).c_str(), static_cast<long>(served_while_exhausted), n, cpu_used,
      ::sysconf(_SC_CLK_TCK));
  EXPECT_GT(served_while_exhausted, 0);
  EXPECT_LT(served_while_exhausted, n);             // the limit really was hit
  EXPECT_LT(cpu_used, ::sysconf(_SC_CLK_TCK) / 2);  // < 0.5 s of CPU in 1.5 s: no spin
  ASSERT_TRUE(server.running());
  // Free descriptors by closing the served clients; the waiting ones must be served now.
  for (int i = 0; i < n; ++i) {
    if (served[i]) {
      ::close(fds[i]);
      fds[i] = -1;
    }
  }
  for (int i = 0; i < n; ++i) {
    if (fds[i] < 0) served[i] = true;  // done with these
  }
  collect(20s, true);
  EXPECT_EQ(std::count(served.begin(), served.end(), true), n);
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

TEST_P(EchoSample, ConnectionsSpreadOverEveryReactorAndStatsListThemAtExit) {
  // With one SO_REUSEPORT listener per reactor the kernel spreads connections by a hash of the
  // peer's port: 32 connections all landing on one of two reactors has odds of 1 in 2^31.
  ServerProcess& server = start({"--stats"});
  ASSERT_GT(server.port(), 0) << server.banner();
  const int n = 32;
  std::vector<int> fds;
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const int fd = connect_nonblocking(server.port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    out.push_back(random_bytes(100, static_cast<std::uint32_t>(i + 1)));
  }
  // Every connection echoed: every one has been accepted and is registered with its reactor.
  EXPECT_EQ(pump_all(fds, out, 20s), n);
  // Stop with the clients still connected: the exit dump lists every connection's handler.
  EXPECT_EQ(server.stop(SIGTERM), 0);
  for (int fd : fds) ::close(fd);
  const std::string dump = read_until_eof(server.output_fd(), Clock::now() + 10s);
  const auto blocks = reactor_blocks(dump, GetParam().reactors());
  int total = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const int here = count_of(blocks[i], "::EchoConnection interest=");
    std::printf("[ measure  ] %s: reactor %zu served %d of %d connections\n",
                config_name(GetParam()).c_str(), i, here, n);
    EXPECT_NE(blocks[i].find("reactor: backend=" + backend()), std::string::npos) << dump;
    EXPECT_GT(here, 0) << "reactor " << i << " got no connection:\n" << dump;
    total += here;
  }
  EXPECT_EQ(total, n) << dump;
}

std::vector<ServerConfig> echo_configs() {
  auto out = server_configs({1, 2});
  for (auto& c : thread_pool_configs(2)) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoSample, ::testing::ValuesIn(echo_configs()),
                         [](const auto& info) { return config_name(info.param); });

}  // namespace
}  // namespace sample_test

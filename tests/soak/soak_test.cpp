// Soak tests (suite 'soak', run by scripts/soak.sh, not by the default CI run): 100,000
// connection open/close cycles against echo_server and http_server with the server's descriptor
// count and resident memory sampled before and after, and a long multi-connection echo run that
// verifies every byte. SOAK_CYCLES and SOAK_SECONDS scale them down or up.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../faults/fault_support.hpp"

namespace faults {
namespace {

long env_number(const char* name, long fallback) {
  const std::string v = env(name);
  return v.empty() ? fallback : std::atol(v.c_str());
}

// Memory may move a little (allocator caches, the kernel's accounting); more than this after
// 100,000 connections is a leak.
constexpr long rss_bound_kib = 4096;

struct Sample {
  int fds = -1;
  long rss = -1;
};

Sample sample(const ServerProcess& server) {
  return {fd_count(server.pid()), rss_kib(server.pid())};
}

// The sample after a run. The server finishes closing the last connections on its own schedule:
// wait for its descriptor count to come back to `before`'s (bounded), then take the sample.
Sample settled(const ServerProcess& server, const Sample& before) {
  return wait_for([&] { return sample(server); },
                  [&](const Sample& s) { return s.fds <= before.fds; }, 10s);
}

// Runs `cycles` open / one exchange / close cycles through `cycle`; checks and prints the
// server's descriptors and memory before (after a warm-up) and after.
template <class Cycle>
void open_close_soak(const ServerProcess& server, const char* name, Cycle cycle) {
  const long cycles = env_number("SOAK_CYCLES", 100000);
  // Warm-up: the first connections grow buffers and the allocator's pools once and for all.
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(cycle()) << "warm-up cycle " << i;
  const Sample before =
      wait_for([&] { return sample(server); }, [](const Sample& s) { return s.fds >= 0; }, 5s);
  const auto start = Clock::now();
  long failed = 0;
  for (long i = 0; i < cycles; ++i) {
    if (!cycle() && ++failed > 10) FAIL() << failed << " failed cycles, the last at " << i;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const Sample after = settled(server, before);
  std::printf(
      "%s: %ld open/close cycles in %.1f s (%.0f/s), %ld failed; server fds %d -> %d, "
      "VmRSS %ld -> %ld KiB\n",
      name, cycles, secs, static_cast<double>(cycles) / secs, failed, before.fds, after.fds,
      before.rss, after.rss);
  EXPECT_EQ(failed, 0);
  EXPECT_LE(after.fds, before.fds) << "descriptors leaked";
  EXPECT_LE(after.rss - before.rss, rss_bound_kib) << "resident memory grew";
  ASSERT_TRUE(server.running());
}

TEST(Soak, EchoServerOpenCloseCycles) {
  REQUIRE_BINARY(path, "ECHO_SERVER");
  ServerProcess server({path, "--port", "0"});
  ASSERT_STARTED(server);
  long n = 0;
  open_close_soak(server, "echo_server", [&] {
    Client c(server.port());
    const std::string message = "cycle " + std::to_string(n++);
    return echoes(c, message, 5s);
  });
  EXPECT_EQ(server.stop(), 0);
}

TEST(Soak, HttpServerOpenCloseCycles) {
  REQUIRE_BINARY(path, "HTTP_SERVER");
  ServerProcess server({path, "--port", "0"});
  ASSERT_STARTED(server);
  open_close_soak(server, "http_server", [&] {
    Client c(server.port());
    // Connection: close, so the server closes first and the TIME_WAIT stays on its side.
    if (!c.send("GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) return false;
    const std::string reply = c.receive_all(5s);
    return c.eof() && reply.rfind("HTTP/1.1 200", 0) == 0;
  });
  EXPECT_EQ(server.stop(), 0);
}

TEST(Soak, LongEchoRunVerifiesEveryByte) {
  REQUIRE_BINARY(path, "ECHO_SERVER");
  ServerProcess server({path, "--port", "0"});
  ASSERT_STARTED(server);
  const auto seconds = std::chrono::seconds(env_number("SOAK_SECONDS", 60));
  constexpr int streams = 4;
  const Sample before = sample(server);
  std::atomic<std::size_t> sent_total{0};
  std::atomic<std::size_t> received_total{0};
  std::atomic<std::size_t> mismatches{0};
  std::atomic<int> short_streams{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      Client c(server.port());
      if (!c.connected()) {
        ++short_streams;
        return;
      }
      // Bytes are a function of the stream and the offset, so a lost, duplicated or reordered
      // byte anywhere shows up as a mismatch.
      auto byte_at = [s](std::size_t i) {
        return static_cast<char>((i * 131 + s * 7 + i / 251) % 256);
      };
      std::size_t sent = 0;
      std::thread writer([&] {
        std::string chunk(65536, '\0');
        const auto stop_at = Clock::now() + seconds;
        while (Clock::now() < stop_at) {
          for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = byte_at(sent + i);
          if (!c.send(chunk)) break;
          sent += chunk.size();
        }
        ::shutdown(c.fd(), SHUT_WR);
      });
      char buf[65536];
      std::size_t got = 0;
      std::size_t bad = 0;
      const auto give_up = Clock::now() + seconds + 60s;
      while (Clock::now() < give_up) {
        pollfd p{c.fd(), POLLIN, 0};
        if (::poll(&p, 1, ms_left(give_up)) <= 0) break;
        const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
          if (buf[i] != byte_at(got + static_cast<std::size_t>(i))) ++bad;
        }
        got += static_cast<std::size_t>(n);
      }
      writer.join();
      if (got != sent) ++short_streams;
      sent_total += sent;
      received_total += got;
      mismatches += bad;
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const Sample after = settled(server, before);
  std::printf(
      "long echo: %d streams, %.2f GiB each way in %.1f s (%.0f MiB/s), %zu mismatched "
      "bytes; server fds %d -> %d, VmRSS %ld -> %ld KiB\n",
      streams, static_cast<double>(received_total.load()) / (1 << 30), secs,
      static_cast<double>(received_total.load()) / (1 << 20) / secs, mismatches.load(), before.fds,
      after.fds, before.rss, after.rss);
  EXPECT_EQ(short_streams.load(), 0) << "a stream lost bytes";
  EXPECT_EQ(received_total.load(), sent_total.load());
  EXPECT_GT(sent_total.load(), 0u);
  EXPECT_EQ(mismatches.load(), 0u);
  EXPECT_LE(after.fds, before.fds);
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace faults

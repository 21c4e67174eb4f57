// coro_echo_client: a coroutine client for the echo servers, as a load generator and integrity
// check. Each connection sends random messages and reads each one back (ping-pong), comparing
// every byte; at the end it prints the round trips per second.
//
//   coro_echo_client --port N [--connections C] [--messages M] [--size S] [--timeout-ms T]
// Exit status: 0 when every byte came back in order, 1 otherwise.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "reactor/futures/executor.hpp"
#include "reactor/futures/io_futures.hpp"
#include "reactor/futures/task.hpp"
#include "reactor/futures/when.hpp"

namespace {

using reactor::Reactor;
using reactor::Task;

struct Options {
  int port = 7000;
  int connections = 50;
  int messages = 1000;
  std::size_t size = 64;
  int timeout_ms = 10000;
};

// One connection's conversation; returns the number of bytes verified.
Task<std::size_t> converse(Reactor& r, const Options& o, unsigned seed) {
  auto stream = co_await reactor::connect(r, reactor::loopback_address(o.port),
                                          std::chrono::milliseconds(o.timeout_ms));
  std::mt19937 rng(seed);
  std::string out(o.size, '\0');
  std::string in(o.size, '\0');
  std::size_t verified = 0;
  for (int m = 0; m < o.messages; ++m) {
    for (char& c : out) c = static_cast<char>(rng());
    co_await stream.write_all(out);
    co_await reactor::timeout(r, stream.read_exact(in), std::chrono::milliseconds(o.timeout_ms));
    if (in != out) throw std::runtime_error("echoed bytes differ");
    verified += in.size();
  }
  co_return verified;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (flag == "--port") {
      o.port = v;
    } else if (flag == "--connections") {
      o.connections = v;
    } else if (flag == "--messages") {
      o.messages = v;
    } else if (flag == "--size") {
      o.size = static_cast<std::size_t>(v);
    } else if (flag == "--timeout-ms") {
      o.timeout_ms = v;
    } else {
      return false;
    }
  }
  return o.connections > 0 && o.messages >= 0 && o.size > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: %s --port N [--connections C] [--messages M] [--size S] "
                 "[--timeout-ms T]\n",
                 argv[0]);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    Reactor r;
    reactor::Executor executor(r);
    std::vector<Task<std::size_t>> conversations;
    for (int c = 0; c < o.connections; ++c) {
      conversations.push_back(converse(r, o, static_cast<unsigned>(c) * 7919U + 1U));
    }
    const auto start = reactor::Clock::now();
    auto verified = executor.block_on(reactor::when_all(std::move(conversations)));
    const std::chrono::duration<double> elapsed = reactor::Clock::now() - start;
    std::size_t bytes = 0;
    for (std::size_t b : verified) bytes += b;
    const double trips = static_cast<double>(o.connections) * o.messages;
    std::printf(
        "ok: %d connections x %d messages of %zu bytes, %zu bytes verified, %.3f s, "
        "%.0f round trips/s\n",
        o.connections, o.messages, o.size, bytes, elapsed.count(), trips / elapsed.count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coro_echo_client: %s\n", e.what());
    return 1;
  }
  return 0;
}

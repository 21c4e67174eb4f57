// coro_echo_client: a coroutine client for the echo servers, as a load generator and integrity
// check. Each connection sends random messages and reads each one back (ping-pong), comparing
// every byte; at the end it prints the round trips per second.
//
//   coro_echo_client [--port N] [--connections C] [--messages M] [--size BYTES] [--timeout-ms T]
// Exit status: 0 when every byte came back in order, 1 otherwise (2: bad arguments).
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "reactor/futures/executor.hpp"
#include "reactor/futures/io_futures.hpp"
#include "reactor/futures/task.hpp"
#include "reactor/futures/when.hpp"
#include "sample_args.hpp"

namespace {

using reactor::Reactor;
using reactor::Task;

// One connection's conversation; returns the number of bytes verified.
Task<std::size_t> converse(Reactor& r, const sample::ClientArgs& load,
                           std::chrono::milliseconds limit, unsigned seed) {
  auto stream = co_await reactor::connect(
      r, reactor::loopback_address(static_cast<std::uint16_t>(load.port)), limit);
  std::mt19937 rng(seed);
  std::string out(static_cast<std::size_t>(load.size), '\0');
  std::string in(out.size(), '\0');
  std::size_t verified = 0;
  for (long m = 0; m < load.messages; ++m) {
    for (char& c : out) c = static_cast<char>(rng());
    co_await stream.write_all(out);
    co_await reactor::timeout(r, stream.read_exact(in), limit);
    if (in != out) throw std::runtime_error("echoed bytes differ");
    verified += in.size();
  }
  co_return verified;
}

}  // namespace

int main(int argc, char** argv) {
  sample::ClientArgs load{.connections = 50, .messages = 1000, .size = 64};
  long timeout_ms = 10000;
  sample::ArgParser parser("coro_echo_client",
                           "Ping-pongs random messages over N connections with coroutines, checks "
                           "every echo and prints the round trips per second.");
  sample::add_client_flags(parser, load);
  parser.integer("--timeout-ms", timeout_ms, 1, 86400000, "T",
                 "limit of each connect and each echo, in milliseconds (default 10000)");
  if (auto status = parser.parse(argc, argv)) return *status;
  ::signal(SIGPIPE, SIG_IGN);
  try {
    Reactor r;
    reactor::Executor executor(r);
    std::vector<Task<std::size_t>> conversations;
    for (long c = 0; c < load.connections; ++c) {
      conversations.push_back(converse(r, load, std::chrono::milliseconds(timeout_ms),
                                       static_cast<unsigned>(c) * 7919U + 1U));
    }
    const auto start = reactor::Clock::now();
    auto verified = executor.block_on(reactor::when_all(std::move(conversations)));
    const std::chrono::duration<double> elapsed = reactor::Clock::now() - start;
    std::size_t bytes = 0;
    for (std::size_t b : verified) bytes += b;
    const double trips = static_cast<double>(load.connections) * static_cast<double>(load.messages);
    std::printf(
        "ok: %ld connections x %ld messages of %ld bytes, %zu bytes verified, %.3f s, "
        "%.0f round trips/s\n",
        load.connections, load.messages, load.size, bytes, elapsed.count(),
        trips / elapsed.count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coro_echo_client: %s\n", e.what());
    return 1;
  }
  return 0;
}

// echo_client: opens N connections to an echo server, sends each M messages of random bytes one
// at a time, checks that every echo comes back byte for byte, and prints a one-line summary.
// Exits 0 when everything matched, 1 on a mismatch, a connection error or the time limit.
//
//   echo_client [--host 127.0.0.1] [--port N] [--connections N] [--messages M] [--size BYTES]
//               [--timeout SECONDS] [--backend NAME]
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "handlers/connector.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "sample_args.hpp"

namespace {

using reactor::Buffer;
using reactor::Reactor;
using reactor::UniqueFd;

struct Totals {
  int connections_left = 0;
  int failed = 0;
  int mismatches = 0;
  std::size_t bytes = 0;
  std::string first_error;
};

// One connection: sends a message, waits for all of it to come back, checks it, sends the next.
class EchoSession final : public reactor::StreamHandler {
 public:
  EchoSession(Reactor& r, Totals& totals, int messages, std::size_t size, unsigned seed)
      : StreamHandler(r, UniqueFd()), totals_(totals), left_(messages), rng_(seed) {
    message_.resize(size);
  }

 protected:
  void on_open() override { next(); }
  void on_data(Buffer& input) override {
    const std::size_t want = message_.size() - matched_;
    const std::size_t n = std::min(want, input.size());
    if (std::string_view(input.data(), n) != std::string_view(message_).substr(matched_, n)) {
      ++totals_.mismatches;
      abort();
      return;
    }
    matched_ += n;
    totals_.bytes += n;
    input.consume(n);
    if (matched_ == message_.size()) next();
  }
  void on_close(std::error_code reason) override {
    if (reason || left_ > 0 || matched_ != message_.size()) {
      ++totals_.failed;
      if (totals_.first_error.empty()) {
        totals_.first_error = reason ? reason.message() : "closed before all echoes arrived";
      }
    }
    if (--totals_.connections_left == 0) reactor().end_event_loop();
  }

 private:
  void next() {
    if (left_ == 0) {
      close();
      return;
    }
    --left_;
    for (auto& c : message_) c = static_cast<char>(rng_());
    matched_ = 0;
    send(std::string_view(message_));
  }

  Totals& totals_;
  int left_;
  std::string message_;
  std::size_t matched_ = 0;
  std::minstd_rand rng_;
};

// Gives up when the time limit passes.
class Deadline final : public reactor::EventHandler {
 public:
  explicit Deadline(Reactor& r) : reactor_(r) {}
  int handle_timeout(reactor::TimePoint, const void*) override {
    expired = true;
    reactor_.end_event_loop();
    return 0;
  }
  bool expired = false;

 private:
  Reactor& reactor_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  sample::ClientArgs load;
  long timeout_s = 30;
  reactor::Backend backend = reactor::Backend::best;
  sample::ArgParser parser("echo_client",
                           "Sends random messages over N connections and checks every echo.");
  parser.text("--host", host, "ADDRESS", "server address (default 127.0.0.1)");
  sample::add_client_flags(parser, load);
  parser
      .integer("--timeout", timeout_s, 1, 86400, "SECONDS", "give up after this long (default 30)")
      .backend(backend);
  if (auto status = parser.parse(argc, argv)) return *status;
  const auto [port, connections, messages, size] = load;
  const std::string where = host.find(':') != std::string::npos
                                ? "[" + host + "]:" + std::to_string(port)
                                : host + ":" + std::to_string(port);
  auto address = reactor::SocketAddress::parse(where);
  if (!address) {
    std::fprintf(stderr, "echo_client: bad address %s\n", where.c_str());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);  // belt and braces: the handlers already use MSG_NOSIGNAL
  Totals totals;
  totals.connections_left = static_cast<int>(connections);
  const auto start = std::chrono::steady_clock::now();
  bool expired = false;
  try {
    Reactor r(backend);
    reactor::Connector connector(r);
    Deadline deadline(r);
    (void)r.schedule_timer(&deadline, nullptr, std::chrono::seconds(timeout_s));
    for (long i = 0; i < connections; ++i) {
      auto session = std::make_unique<EchoSession>(r, totals, static_cast<int>(messages),
                                                   static_cast<std::size_t>(size),
                                                   static_cast<unsigned>(i + 1));
      (void)connector.connect(std::move(session), address.value(), std::chrono::seconds(timeout_s));
    }
    if (auto ec = r.run_event_loop()) {
      std::fprintf(stderr, "echo_client: %s\n", ec.message().c_str());
      return 1;
    }
    expired = deadline.expired;
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "echo_client: %s\n", e.what());
    return 1;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  const bool ok = !expired && totals.failed == 0 && totals.mismatches == 0;
  std::printf(
      "echo_client: %ld connections x %ld messages x %ld bytes: %zu bytes echoed in %lld ms, "
      "%d failed, %d mismatched%s%s -> %s\n",
      connections, messages, size, totals.bytes, static_cast<long long>(ms), totals.failed,
      totals.mismatches, expired ? ", timed out" : "",
      totals.first_error.empty() ? "" : (" (" + totals.first_error + ")").c_str(),
      ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

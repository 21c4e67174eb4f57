// kv_server: an in-memory key-value server speaking RESP2 (and inline commands), enough for
// redis-cli and redis-benchmark. Built from the framework's production pieces: an Acceptor creates
// one StreamHandler per connection, which executes every complete command in its input
// (pipelining), appends all the replies and sends them with one write. A malformed frame gets an
// error reply and a close.
//
//   kv_server [--port N] [--backend select|poll|epoll]     (port 0: pick a free one)
//
// Commands: PING ECHO SET(EX/PX/NX/XX/KEEPTTL) GET DEL EXISTS INCR DECR INCRBY DECRBY MSET MGET
// TTL PTTL DBSIZE FLUSHALL FLUSHDB CONFIG GET, COMMAND, QUIT.
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "sample_stats.hpp"
#include "samples/kv/kv_store.hpp"
#include "samples/kv/resp_parser.hpp"

namespace {

constexpr const char* program = "kv_server";

const kv::RespLimits limits{};

// How often idle expired keys are purged, and how many at most per round (lazy expiry on access
// does the rest), so the loop never stalls on a mass expiry.
constexpr auto purge_interval = std::chrono::milliseconds(100);
constexpr std::size_t purge_budget = 1000;

reactor::StreamOptions stream_options() {
  reactor::StreamOptions o;
  // Above the largest frame the parser accepts, so the parser (which replies) speaks first.
  o.max_input = limits.max_frame + 64 * 1024;
  return o;
}

// One client connection; owned by the framework (the Acceptor hands it over).
class KvConnection final : public reactor::StreamHandler {
 public:
  KvConnection(reactor::Reactor& r, reactor::UniqueFd socket, kv::KvStore& store)
      : StreamHandler(r, std::move(socket), stream_options()), store_(store) {}

 protected:
  // Executes every complete command in `input` in order, then sends all replies at once.
  void on_data(reactor::Buffer& input) override {
    out_.clear();
    bool must_close = false;
    const auto now = kv::Clock::now();  // one clock read per batch is precise enough for expiry
    while (!input.empty() && !must_close) {
      const auto result = kv::parse_command({input.data(), input.size()}, args_, limits);
      if (result.status == kv::RespStatus::incomplete) break;
      if (result.status == kv::RespStatus::error) {
        // The stream cannot be re-synchronised after a bad frame: reply, then close.
        std::string text = "ERR protocol error: ";
        text.append(result.error);
        kv::append_error(out_, text);
        must_close = true;
        break;
      }
      // Execute before consume: args_ point into input.
      if (!args_.empty() && store_.execute(args_, out_, now) == kv::After::close) {
        must_close = true;
      }
      input.consume(result.consumed);
    }
    if (!out_.empty()) send(std::string_view(out_));
    if (must_close) {
      input.clear();
      close();
    }
  }

 private:
  kv::KvStore& store_;
  std::vector<std::string_view> args_;  // capacity reused across commands
  std::string out_;                     // replies of one batch; capacity reused
};

// Ends the event loop on SIGINT / SIGTERM and purges expired keys on a timer.
class Housekeeper final : public reactor::EventHandler {
 public:
  Housekeeper(reactor::Reactor& r, kv::KvStore& store) : reactor_(r), store_(store) {}
  int handle_signal(int) override {
    reactor_.end_event_loop();
    return 0;
  }
  int handle_timeout(reactor::TimePoint now, const void*) override {
    store_.purge_expired(now, purge_budget);
    return 0;
  }

 private:
  reactor::Reactor& reactor_;
  kv::KvStore& store_;
};

bool parse_args(int argc, char** argv, std::uint16_t& port, reactor::Backend& backend) {
  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return false;
    const std::string_view value = argv[i + 1];
    if (flag == "--port") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
      if (ec != std::errc() || end != value.data() + value.size()) return false;
    } else if (flag == "--backend") {
      if (reactor::parse_backend(value, backend)) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool show_stats = sample::take_stats_flag(argc, argv);
  std::uint16_t port = 6379;
  reactor::Backend backend = reactor::Backend::best;
  if (!parse_args(argc, argv, port, backend)) {
    std::fprintf(stderr, "usage: %s [--port N] [--backend select|poll|epoll]\n", program);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    kv::KvStore store;  // outlives the reactor, whose destructor closes the connections
    reactor::Reactor r(backend);
    sample::StatsReporter stats(r, show_stats);
    using Acceptor = reactor::Acceptor<KvConnection>;
    Acceptor acceptor(
        r, [&store](reactor::Reactor& rr, reactor::UniqueFd fd, const reactor::SocketAddress&) {
          return std::make_unique<KvConnection>(rr, std::move(fd), store);
        });
    if (auto ec = acceptor.open(reactor::SocketAddress::loopback_v4(port))) {
      std::fprintf(stderr, "%s: cannot listen on port %u: %s\n", program, port,
                   ec.message().c_str());
      return 1;
    }
    Housekeeper keeper(r, store);
    (void)r.register_signal(SIGINT, &keeper);
    (void)r.register_signal(SIGTERM, &keeper);
    (void)r.schedule_timer(&keeper, nullptr, purge_interval, purge_interval);
    std::printf("%s listening on 127.0.0.1:%u (backend %s)\n", program,
                acceptor.local_address().port(),
                std::string(reactor::backend_name(r.backend())).c_str());
    std::fflush(stdout);
    if (auto ec = r.run_event_loop()) {
      std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
      return 1;
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
  return 0;
}

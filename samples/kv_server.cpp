// kv_server: an in-memory key-value server speaking RESP2 (and inline commands), enough for
// redis-cli and redis-benchmark. Built from the framework's production pieces: an Acceptor creates
// one StreamHandler per connection, which executes every complete command in its input
// (pipelining), appends all the replies and sends them with one write. A malformed frame gets an
// error reply and a close.
//
//   kv_server [--port N] [--backend NAME] [--threads N] [--stats]   (port 0: pick a free one)
//
// --threads N > 1 runs a ReactorPool: N single-threaded reactors, one thread each; one acceptor
// hands the connections out in turn (see serve_pool). The store is shared by every connection,
// so with N > 1 each connection executes its batch of commands under one mutex: simple, and
// correct for the multi-key commands (MSET, MGET, DEL, EXISTS) and DBSIZE / FLUSHALL that
// sharding by key would have to split across reactors. SIGINT / SIGTERM exit with 0.
//
// Commands: PING ECHO SET(EX/PX/NX/XX/KEEPTTL) GET DEL EXISTS INCR DECR INCRBY DECRBY MSET MGET
// TTL PTTL DBSIZE FLUSHALL FLUSHDB CONFIG GET, COMMAND, QUIT.
#include <signal.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/hand_off.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "reactor/reactor_pool.hpp"
#include "sample_args.hpp"
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
  // `lock` guards `store` when other threads use it too (null with one thread). Any dispatcher
  // StreamHandler accepts (a template, so no reactor type is named here).
  template <class Loop>
  KvConnection(Loop& r, reactor::UniqueFd socket, kv::KvStore& store, std::mutex* lock)
      : StreamHandler(r, std::move(socket), stream_options()), store_(store), lock_(lock) {}

 protected:
  // Executes every complete command in `input` in order, then sends all replies at once.
  void on_data(reactor::Buffer& input) override {
    out_.clear();
    bool must_close = false;
    const auto now = kv::Clock::now();   // one clock read per batch is precise enough for expiry
    std::unique_lock<std::mutex> guard;  // one lock per batch, released before the send
    if (lock_ != nullptr) guard = std::unique_lock<std::mutex>(*lock_);
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
    if (guard.owns_lock()) guard.unlock();
    if (!out_.empty()) send(std::string_view(out_));
    if (must_close) {
      input.clear();
      close();
    }
  }

 private:
  kv::KvStore& store_;
  std::mutex* lock_;
  std::vector<std::string_view> args_;  // capacity reused across commands
  std::string out_;                     // replies of one batch; capacity reused
};

// Calls `stop` on SIGINT / SIGTERM, and purges expired keys on a timer (under `lock`, if any).
class Housekeeper final : public reactor::EventHandler {
 public:
  Housekeeper(std::function<void()> stop, kv::KvStore& store, std::mutex* lock)
      : stop_(std::move(stop)), store_(store), lock_(lock) {}
  int handle_signal(int) override {
    stop_();
    return 0;
  }
  int handle_timeout(reactor::TimePoint now, const void*) override {
    std::unique_lock<std::mutex> guard;
    if (lock_ != nullptr) guard = std::unique_lock<std::mutex>(*lock_);
    store_.purge_expired(now, purge_budget);
    return 0;
  }

 private:
  std::function<void()> stop_;
  kv::KvStore& store_;
  std::mutex* lock_;
};

void print_banner(std::uint16_t port, reactor::Backend backend, std::size_t threads) {
  std::printf("%s listening on 127.0.0.1:%u (backend %s)%s\n", program, port,
              std::string(reactor::backend_name(backend)).c_str(),
              sample::threads_suffix(threads).c_str());
  std::fflush(stdout);
}

int cannot_listen(std::uint16_t port, std::error_code ec) {
  std::fprintf(stderr, "%s: cannot listen on port %u: %s\n", program, port, ec.message().c_str());
  return 1;
}

// --threads 1: one Reactor on the main thread; the store needs no lock.
int serve_single(const sample::ServerArgs& args) {
  kv::KvStore store;  // outlives the reactor, whose destructor closes the connections
  reactor::Reactor r(args.backend);
  sample::StatsReporter stats(r, args.stats);
  reactor::Acceptor<KvConnection> acceptor(
      r, [&store](auto& rr, reactor::UniqueFd fd, const reactor::SocketAddress&) {
        return std::make_unique<KvConnection>(rr, std::move(fd), store, nullptr);
      });
  if (auto ec = acceptor.open(reactor::SocketAddress::loopback_v4(args.port))) {
    return cannot_listen(args.port, ec);
  }
  Housekeeper keeper([&r] { r.end_event_loop(); }, store, nullptr);
  (void)r.register_signal(SIGINT, &keeper);
  (void)r.register_signal(SIGTERM, &keeper);
  (void)r.schedule_timer(&keeper, nullptr, purge_interval, purge_interval);
  print_banner(acceptor.local_address().port(), r.backend(), 1);
  if (auto ec = r.run_event_loop()) {
    std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
    return 1;
  }
  return 0;
}

// --threads N > 1: a ReactorPool; one acceptor on reactor 0 hands each connection to the next
// reactor in turn (ReactorPool::hand_off). Why one acceptor rather than one SO_REUSEPORT
// listener per reactor: key-value clients keep a few long-lived, pipelined connections (a
// connection pool, redis-benchmark's -c 20), so the accept rate is irrelevant while the spread is
// not: round-robin puts exactly as many connections on each reactor, where the kernel's hash of
// the peer's port can put three of four on one. The store is shared under one mutex.
int serve_pool(const sample::ServerArgs& args) {
  kv::KvStore store;  // outlives the pool, whose destruction closes the connections
  std::mutex store_lock;
  reactor::ReactorOptions options;
  options.backend = args.backend;
  reactor::ReactorPool pool(args.threads, options);
  // The factory runs on the reactor the connection was handed to; `r` is that reactor.
  auto make = [&](auto& r, reactor::UniqueFd fd, const reactor::SocketAddress&) {
    return std::make_unique<KvConnection>(r, std::move(fd), store, &store_lock);
  };
  reactor::Acceptor<KvConnection> acceptor(pool.at(0), reactor::hand_off<KvConnection>(pool, make));
  if (auto ec = acceptor.open(reactor::SocketAddress::loopback_v4(args.port))) {
    return cannot_listen(args.port, ec);
  }
  std::vector<std::unique_ptr<sample::StatsReporter<reactor::Reactor>>> stats;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    stats.push_back(std::make_unique<sample::StatsReporter<reactor::Reactor>>(
        pool.at(i), args.stats,
        "[reactor " + std::to_string(i) + "/" + std::to_string(pool.size()) + "]"));
  }
  Housekeeper keeper([&pool] { pool.end_event_loop(); }, store, &store_lock);
  (void)pool.at(0).register_signal(SIGINT, &keeper);
  (void)pool.at(0).register_signal(SIGTERM, &keeper);
  (void)pool.at(0).schedule_timer(&keeper, nullptr, purge_interval, purge_interval);
  // The banner comes from the last reactor's thread once it runs: by then every thread of the
  // pool exists and every signal is watched.
  (void)pool.post_to(pool.size() - 1,
                     [port = acceptor.local_address().port(), backend = pool.at(0).backend(),
                      n = pool.size()] { print_banner(port, backend, n); });
  (void)pool.run();  // reactor 0 on this thread, the others on their own; joins them all
  for (auto& s : stats) s->finish();  // in reactor order
  if (auto ec = pool.first_error()) {
    std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sample::ServerArgs args{.port = 6379};
  sample::ArgParser parser(program, "An in-memory key-value server speaking RESP2 (redis-cli).");
  sample::add_server_flags(parser, args);
  if (auto status = parser.parse(argc, argv)) return *status;
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return args.threads == 1 ? serve_single(args) : serve_pool(args);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

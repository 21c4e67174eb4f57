// kv_server: an in-memory key-value server speaking RESP2 (and inline commands), enough for
// redis-cli and redis-benchmark. Built from the framework's production pieces: an Acceptor creates
// one StreamHandler per connection, which executes every complete command in its input
// (pipelining), appends all the replies and sends them with one write. A malformed frame gets an
// error reply and a close.
//
//   kv_server [--port N] [--backend NAME] [--threads N] [--stats]   (port 0: pick a free one)
//
// --threads N > 1 runs a ReactorPool: N single-threaded reactors, one thread each; one acceptor
// hands the connections out in turn (see main). The store is shared by every connection,
// so with N > 1 each connection executes its batch of commands under one mutex: simple, and
// correct for the multi-key commands (MSET, MGET, DEL, EXISTS) and DBSIZE / FLUSHALL that
// sharding by key would have to split across reactors. SIGINT / SIGTERM exit with 0.
//
// Commands: PING ECHO SET(EX/PX/NX/XX/KEEPTTL) GET DEL EXISTS INCR DECR INCRBY DECRBY MSET MGET
// TTL PTTL DBSIZE FLUSHALL FLUSHDB CONFIG GET, COMMAND, QUIT.
#include <signal.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/stream_handler.hpp"
#include "sample_server.hpp"
#include "samples/kv/kv_store.hpp"
#include "samples/kv/resp_parser.hpp"

namespace {

constexpr sample::Program program{.name = "kv_server", .listen_error_names_port = true};

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

// Purges expired keys on a timer (under `lock`, if any).
class Purger final : public reactor::EventHandler {
 public:
  Purger(kv::KvStore& store, std::mutex* lock) : store_(store), lock_(lock) {}
  int handle_timeout(reactor::TimePoint now, const void*) override {
    std::unique_lock<std::mutex> guard;
    if (lock_ != nullptr) guard = std::unique_lock<std::mutex>(*lock_);
    store_.purge_expired(now, purge_budget);
    return 0;
  }

 private:
  kv::KvStore& store_;
  std::mutex* lock_;
};

// --threads N > 1: one acceptor handing the connections out in turn rather than one
// SO_REUSEPORT listener per reactor, because key-value clients keep a few long-lived, pipelined
// connections (a connection pool, redis-benchmark's -c 20): the accept rate is irrelevant while
// the spread is not. Round-robin puts exactly as many connections on each reactor, where the
// kernel's hash of the peer's port can put three of four on one.
int serve(const sample::ServerArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  kv::KvStore store;  // outlives the reactors, whose destruction closes the connections
  std::mutex store_lock;
  std::mutex* const lock = args.threads == 1 ? nullptr : &store_lock;  // one thread: no lock
  return sample::serve<KvConnection>(
      program, args, sample::Spread::hand_off,
      [&store, lock](reactor::Dispatcher& r, reactor::UniqueFd fd) {
        return std::make_unique<KvConnection>(r, std::move(fd), store, lock);
      },
      {.handlers = [&store, lock](reactor::Reactor& r) {
        auto purger = std::make_unique<Purger>(store, lock);
        (void)r.schedule_timer(purger.get(), nullptr, purge_interval, purge_interval);
        return purger;
      }});
}

}  // namespace

int main(int argc, char** argv) {
  return sample::server_main(program, argc, argv, {.port = 6379},
                             "An in-memory key-value server speaking RESP2 (redis-cli).", serve);
}

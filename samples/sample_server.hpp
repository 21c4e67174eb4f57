// What the sample servers share around their own connections: the banner, the error messages,
// the stop signals, the statistics reporters and the run of one reactor or of a ReactorPool.
// A sample says what it serves (a StreamHandler per client, made by a factory) and how a pool
// spreads its clients; everything else is here, so that every server behaves the same way:
//
//   - "<name> listening on 127.0.0.1:<port> (backend <b>)[ with N threads]" on stdout, flushed,
//     once the server can be stopped (scripts and tests wait for that line);
//   - SIGINT / SIGTERM end every loop, and the exit status is 0;
//   - --stats prints every reactor's statistics at exit, SIGUSR1 at any time (sample_stats.hpp);
//   - any failure after the arguments are parsed is "<name>: <why>" on stderr, status 1.
//
//   constexpr sample::Program program{"echo_server"};
//   return sample::server_main(program, argc, argv, {.port = 7000}, "Echoes...",
//                              [](const sample::ServerArgs& args) {
//                                return sample::serve<EchoConnection>(program, args,
//                                                                     sample::Spread::reuse_port);
//                              });
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/hand_off.hpp"
#include "handlers/socket_address.hpp"
#include "reactor/reactor.hpp"
#include "reactor/reactor_pool.hpp"
#include "sample_args.hpp"
#include "sample_stats.hpp"

namespace sample {

/// A sample server's name, and how it words a failed listen.
struct Program {
  /// The banner's first word and every message's prefix.
  const char* name;
  /// "cannot listen on port N" (http_server, kv_server, coro_echo_server) rather than "cannot
  /// listen on 127.0.0.1:N": each sample keeps the wording it has always printed.
  bool listen_error_names_port = false;

  /// "<name> listening on <where> (backend <b>)<suffix>" on stdout, flushed at once.
  void print_banner(const reactor::SocketAddress& where, reactor::Backend backend,
                    const std::string& suffix = {}) const {
    std::printf("%s listening on %s (backend %s)%s\n", name, where.to_string().c_str(),
                std::string(reactor::backend_name(backend)).c_str(), suffix.c_str());
    std::fflush(stdout);
  }
  /// "<name>: <what>" on stderr; returns 1, the exit status of every failure after parsing.
  int fail(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n", name, what.c_str());
    return 1;
  }
  /// fail() for a listener that could not be opened on `address`.
  int cannot_listen(const reactor::SocketAddress& address, std::error_code ec) const {
    const std::string where =
        listen_error_names_port ? "port " + std::to_string(address.port()) : address.to_string();
    return fail("cannot listen on " + where + ": " + ec.message());
  }
};

/// A sample's main() after its option table is built: parses argv (an exit status for --help or
/// a bad argument), then returns serve(); a std::system_error from it (a reactor that cannot be
/// created, a thread that cannot start) is reported by `program` with status 1.
template <class Serve>
int run_main(const Program& program, const ArgParser& parser, int argc, char** argv, Serve serve) {
  if (auto status = parser.parse(argc, argv)) return *status;
  try {
    return serve();
  } catch (const std::system_error& e) {
    return program.fail(e.what());
  }
}

/// run_main() for a server whose only flags are the shared ones (add_server_flags):
/// `defaults.port` is its default port, `summary` the first line of --help.
template <class Serve>
int server_main(const Program& program, int argc, char** argv, ServerArgs defaults,
                const std::string& summary, Serve serve) {
  ArgParser parser(program.name, summary);
  add_server_flags(parser, defaults);
  return run_main(program, parser, argc, argv, [&] { return serve(defaults); });
}

/// Calls `stop` on SIGINT / SIGTERM (delivered from the loop, not in signal context): ends the
/// one reactor's loop, or every loop of a pool.
class Stopper final : public reactor::EventHandler {
 public:
  explicit Stopper(std::function<void()> stop) : stop_(std::move(stop)) {}
  int handle_signal(int /*signum*/) override {
    stop_();
    return 0;
  }

 private:
  std::function<void()> stop_;
};

/// Makes the connection handler for a socket accepted on (or handed to) reactor `r`.
template <class Service>
using Make = std::function<std::unique_ptr<Service>(reactor::Dispatcher& r, reactor::UniqueFd)>;

/// The Make that builds Service(r, socket), for connections that share nothing.
template <class Service>
Make<Service> construct() {
  return [](reactor::Dispatcher& r, reactor::UniqueFd socket) {
    return std::make_unique<Service>(r, std::move(socket));
  };
}

/// What a sample adds to the common run; all optional.
template <class Loop>
struct Extras {
  /// Handlers of the sample's own on the reactor that watches the stop signals (kv_server's
  /// expiry timer), made once the listeners are open and destroyed before them.
  std::function<std::unique_ptr<reactor::EventHandler>(Loop&)> handlers = {};
  /// Appended to the banner (echo_server's thread-pool reactor says so).
  std::string banner_suffix = {};
  /// Stop listening as soon as the loop ends, before the statistics at exit (chat_server's exit
  /// dump has no listener line).
  bool close_listeners_first = false;
};

/// How a ReactorPool shares its clients out. Each sample says why it chose its way.
enum class Spread {
  /// One SO_REUSEPORT listener per reactor: each reactor accepts its own clients (the kernel
  /// picks one by a hash of the peer's address and port) and no connection crosses threads.
  reuse_port,
  /// One listener on reactor 0 that hands each client to the next reactor in turn
  /// (reactor::hand_off): an exactly even spread, at one post per connection.
  hand_off,
};

/// ReactorOptions for a pool of the server's --backend.
inline reactor::ReactorOptions reactor_options(const ServerArgs& args) {
  reactor::ReactorOptions options;
  options.backend = args.backend;
  return options;
}

namespace detail {

template <class Service>
typename reactor::Acceptor<Service>::Factory acceptor_factory(Make<Service> make) {
  return [make = std::move(make)](reactor::Dispatcher& r, reactor::UniqueFd socket,
                                  const reactor::SocketAddress&) {
    return make(r, std::move(socket));
  };
}

// A handler of a ThreadPoolReactor is retired before it is destroyed, as that reactor's rules ask
// (thread_pool_reactor.hpp); a Reactor needs nothing.
template <class Loop>
void retire(Loop& r, reactor::EventHandler* handler) {
  if constexpr (requires { r.retire(handler); }) (void)r.retire(handler);
}

// Watches SIGINT / SIGTERM on `r` and ends the run with `stop`.
template <class Loop>
class StopSignals {
 public:
  StopSignals(Loop& r, std::function<void()> stop) : r_(r), stopper_(std::move(stop)) {
    (void)r_.register_signal(SIGINT, &stopper_);
    (void)r_.register_signal(SIGTERM, &stopper_);
  }
  ~StopSignals() { retire(r_, &stopper_); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  Loop& r_;
  Stopper stopper_;
};

}  // namespace detail

/// --threads 1 (or echo_server's one thread-pool reactor): serves Service on `r` with one
/// listener on 127.0.0.1:args.port until SIGINT / SIGTERM. The exit status.
template <class Service, class Loop>
int serve_on(const Program& program, Loop& r, const ServerArgs& args, Make<Service> make,
             const Extras<Loop>& extras = {}) {
  StatsReporter stats(r, args.stats);  // destroyed last: its exit dump comes after the others
  reactor::Acceptor<Service> acceptor(r, detail::acceptor_factory(std::move(make)));
  const auto address = reactor::SocketAddress::loopback_v4(args.port);
  if (auto ec = acceptor.open(address)) return program.cannot_listen(address, ec);
  const auto own = extras.handlers ? extras.handlers(r) : nullptr;
  std::error_code failed;
  {
    detail::StopSignals<Loop> stop(r, [&r] { r.end_event_loop(); });
    program.print_banner(acceptor.local_address(), r.backend(), extras.banner_suffix);
    failed = r.run_event_loop();
  }
  if (extras.close_listeners_first) acceptor.close();
  if (own) detail::retire(r, own.get());
  detail::retire(r, &acceptor);
  return failed ? program.fail(failed.message()) : 0;
}

/// --threads N > 1: serves Service on every reactor of `pool`, spread as `spread` says, until
/// SIGINT / SIGTERM. The exit status.
template <class Service>
int serve_on(const Program& program, reactor::ReactorPool& pool, const ServerArgs& args,
             Spread spread, Make<Service> make, const Extras<reactor::Reactor>& extras = {}) {
  // Built and registered here, before any loop thread starts (starting a thread orders these
  // writes before everything that thread does); destroyed after run() has joined every thread.
  std::vector<std::unique_ptr<reactor::Acceptor<Service>>> acceptors;
  auto address = reactor::SocketAddress::loopback_v4(args.port);
  if (spread == Spread::hand_off) {
    acceptors.push_back(std::make_unique<reactor::Acceptor<Service>>(
        pool.at(0),
        reactor::hand_off<Service>(
            pool, [make](reactor::Reactor& r, reactor::UniqueFd socket,
                         const reactor::SocketAddress&) { return make(r, std::move(socket)); })));
    if (auto ec = acceptors.back()->open(address)) return program.cannot_listen(address, ec);
  } else {
    reactor::AcceptorOptions options;
    options.reuse_port = true;
    for (std::size_t i = 0; i < pool.size(); ++i) {
      acceptors.push_back(std::make_unique<reactor::Acceptor<Service>>(
          pool.at(i), detail::acceptor_factory(make), options));
      if (auto ec = acceptors.back()->open(address)) return program.cannot_listen(address, ec);
      address = acceptors.back()->local_address();  // --port 0: the others join the port picked
    }
  }
  address = acceptors.front()->local_address();
  std::vector<std::unique_ptr<StatsReporter<reactor::Reactor>>> stats;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    stats.push_back(std::make_unique<StatsReporter<reactor::Reactor>>(
        pool.at(i), args.stats, reactor_label(i, pool.size())));
  }
  const auto own = extras.handlers ? extras.handlers(pool.at(0)) : nullptr;
  detail::StopSignals<reactor::Reactor> stop(pool.at(0), [&pool] { pool.end_event_loop(); });
  // The banner comes from the last reactor's thread once it runs: by then every thread of the
  // pool exists and every signal is watched.
  (void)pool.post_to(pool.size() - 1,
                     [&program, address, backend = pool.at(0).backend(),
                      suffix = threads_suffix(pool.size()) + extras.banner_suffix] {
                       program.print_banner(address, backend, suffix);
                     });
  (void)pool.run();  // reactor 0 on this thread, the others on their own; joins them all
  if (extras.close_listeners_first) {
    for (auto& a : acceptors) a->close();
  }
  for (auto& s : stats) s->finish();  // in reactor order
  if (auto ec = pool.first_error()) return program.fail(ec.message());
  return 0;
}

/// A server whose connections are made the same way with one reactor or many: --threads 1 runs
/// one Reactor on this thread, N > 1 a ReactorPool of N reactors spread as `spread` says.
template <class Service>
int serve(const Program& program, const ServerArgs& args, Spread spread,
          Make<Service> make = construct<Service>(), const Extras<reactor::Reactor>& extras = {}) {
  if (args.threads == 1) {
    reactor::Reactor r(args.backend);
    return serve_on<Service>(program, r, args, std::move(make), extras);
  }
  reactor::ReactorPool pool(args.threads, reactor_options(args));
  return serve_on<Service>(program, pool, args, spread, std::move(make), extras);
}

}  // namespace sample

// coro_echo_server: the echo_server sample written with coroutines. One task accepts, one task
// per connection reads and writes back; the Executor sleeps in the Reactor in between.
//
//   coro_echo_server [--port N] [--backend NAME] [--threads N] [--stats]    (--help: details)
//
// Port 0 picks a free one. --threads N > 1 runs a PoolExecutor over a ReactorPool of N reactors
// (one thread and one Executor each); --threads 1, the default, is the single Executor on the
// main thread, as before --threads existed. SIGINT / SIGTERM end the program (every thread) with
// status 0.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "reactor/futures/executor.hpp"
#include "reactor/futures/io_futures.hpp"
#include "reactor/futures/pool_executor.hpp"
#include "reactor/futures/task.hpp"
#include "reactor/futures/when.hpp"
#include "reactor/reactor_pool.hpp"
#include "sample_server.hpp"

namespace {

using namespace std::chrono_literals;
using reactor::Executor;
using reactor::Listener;
using reactor::Stream;
using reactor::Task;

constexpr sample::Program program{.name = "coro_echo_server", .listen_error_names_port = true};

// The line the integration scripts see when a signal ends the server.
void print_stopping(int signum) {
  std::printf("%s: signal %d, stopping\n", program.name, signum);
  std::fflush(stdout);
}

// Echoes until the client closes or an error occurs; errors end only this connection.
Task<void> serve(Stream stream) {
  std::array<char, 16384> buffer;
  for (;;) {
    auto n = co_await reactor::outcome_of(stream.read_some(buffer));
    if (!n || *n == 0) co_return;
    auto written = co_await reactor::outcome_of(stream.write_all({buffer.data(), *n}));
    if (!written) co_return;
  }
}

// Accepts forever; a failed accept (EMFILE...) backs off instead of spinning.
Task<void> accept_loop(Executor& executor, Listener& listener) {
  for (;;) {
    auto conn = co_await reactor::outcome_of(listener.accept());
    if (!conn) {
      co_await reactor::sleep_for(executor.reactor(), 10ms);
      continue;
    }
    executor.spawn(serve(std::move(*conn))).detach();
  }
}

// ---- --threads N > 1 ---------------------------------------------------------------------------
//
// One SO_REUSEPORT listening socket per reactor, all on the same port, each with its own accept
// task. Why not one listener whose task spawns the connections round-robin: an echo connection
// needs nothing from any other, so with a listener per reactor the kernel spreads the clients
// over the reactors and each connection is accepted, served and closed by one thread, with no
// post per connection and no single accepting thread as a funnel (a Stream also belongs to the
// reactor it was made on, so a hand-off would have to carry the raw descriptor). The kernel's
// spread is a hash of the peer's address and port: even for many clients, not for two or three.

// Listening sockets on 127.0.0.1:`port`, `count` of them sharing the port with SO_REUSEPORT
// (port 0: the first one picks a free port and the others join it).
reactor::Result<std::vector<reactor::UniqueFd>> reuseport_listeners(std::uint16_t port,
                                                                    std::size_t count) {
  std::vector<reactor::UniqueFd> out;
  std::uint16_t bound = port;
  for (std::size_t i = 0; i < count; ++i) {
    reactor::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return reactor::last_system_error();
    const int one = 1;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      return reactor::last_system_error();
    }
    const sockaddr_in addr = reactor::loopback_address(bound);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), SOMAXCONN) != 0) {
      return reactor::last_system_error();
    }
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      bound = ntohs(local.sin_port);
    }
    out.push_back(std::move(fd));
  }
  return out;
}

// One reactor's accept loop on its own listening socket; the connections' tasks are spawned on
// this reactor's executor (a local spawn: they never leave this thread).
Task<void> accept_here(reactor::UniqueFd fd) {
  Executor& executor = *Executor::current();
  Listener listener(executor.reactor(), std::move(fd));
  co_await accept_loop(executor, listener);
}

using Reporter = sample::StatsReporter<reactor::Reactor>;

int serve_pool(const sample::ServerArgs& args) {
  reactor::ReactorPool pool(args.threads, sample::reactor_options(args));
  auto listeners = reuseport_listeners(args.port, args.threads);
  if (!listeners) {
    return program.cannot_listen(reactor::SocketAddress::loopback_v4(args.port), listeners.error());
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  (void)::getsockname(listeners.value()[0].get(), reinterpret_cast<sockaddr*>(&local), &len);
  // One statistics reporter per reactor (SIGUSR1, and --stats at exit). Each is made on its
  // reactor's thread, which must register it; declared before the executor, so that they are
  // destroyed after its threads have been joined.
  std::vector<std::unique_ptr<Reporter>> stats(args.threads);
  reactor::PoolExecutor executor(pool);  // starts one thread per reactor
  auto stop = executor.spawn_on(0, [](Executor& e) {
    return reactor::wait_signal(e.reactor(), {SIGINT, SIGTERM});
  });
  std::vector<reactor::PoolJoinHandle<void>> setup;
  for (std::size_t i = 0; i < args.threads; ++i) {
    setup.push_back(executor.spawn_on(i, [&stats, &args, i](Executor& e) {
      stats[i] = std::make_unique<Reporter>(e.reactor(), args.stats,
                                            sample::reactor_label(i, args.threads));
      return reactor::yield_now();
    }));
    executor.spawn_on(i, accept_here(std::move(listeners.value()[i]))).detach();
  }
  // Once every setup task has finished, every reactor watches SIGUSR1, and reactor 0 watches
  // SIGINT and SIGTERM (that task was spawned on it first, and tasks posted to one reactor start
  // in spawn order): a signal sent right after the banner is never fatal.
  for (auto& done : setup) done.get();
  program.print_banner(reactor::SocketAddress::loopback_v4(ntohs(local.sin_port)),
                       pool.at(0).backend(), sample::threads_suffix(args.threads));
  const int signum = stop.get();  // this thread only waits; the reactors' threads serve
  print_stopping(signum);
  // Every task (accept loops, connections) is dropped on its own reactor's thread, and every
  // thread is joined; afterwards this thread may read the reactors.
  executor.shutdown();
  for (auto& s : stats) s->finish();  // in reactor order
  return 0;
}

// --threads 1: one Executor on this thread.
int serve_single(const sample::ServerArgs& args) {
  reactor::Reactor r(args.backend);
  sample::StatsReporter stats(r, args.stats);
  auto listener = Listener::bind_loopback(r, args.port, SOMAXCONN);
  if (!listener) {
    return program.cannot_listen(reactor::SocketAddress::loopback_v4(args.port), listener.error());
  }
  Executor executor(r);
  // Watch the signals before the banner, so a signal sent right after it is not fatal.
  auto stop = executor.spawn(reactor::wait_signal(r, {SIGINT, SIGTERM}));
  executor.block_on(reactor::yield_now());
  program.print_banner(reactor::SocketAddress::loopback_v4(listener.value().port()), r.backend());
  auto first = executor.block_on(
      reactor::when_any(accept_loop(executor, listener.value()), std::move(stop)));
  print_stopping(std::get<1>(first));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return sample::server_main(program, argc, argv, {.port = 7000},
                             "Echoes every byte back, with coroutines (an Executor; --threads N > "
                             "1: a PoolExecutor over N reactors).",
                             [](const sample::ServerArgs& args) {
                               ::signal(SIGPIPE, SIG_IGN);
                               return args.threads > 1 ? serve_pool(args) : serve_single(args);
                             });
}

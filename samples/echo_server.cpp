// echo_server: every byte a client sends comes back to it, in order. The canonical service built
// from the framework's parts: an Acceptor that makes one EchoConnection (a StreamHandler) per
// client. Backpressure, partial writes, resets and descriptor exhaustion are the handlers' job.
//
//   echo_server [--port N] [--backend NAME] [--threads N] [--model pool|tp] [--stats]
//               [--max-fds N]
//
// --port 0 picks a free port; the banner on stdout says which. --max-fds lowers RLIMIT_NOFILE
// (for exercising descriptor exhaustion). --threads N > 1 runs N event-loop threads: with
// --model pool (the default) a ReactorPool, N single-threaded reactors, one thread each; with
// --model tp one ThreadPoolReactor served by N threads (leader/followers), the same services
// unchanged. SIGINT / SIGTERM end the program (every thread) with status 0.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "reactor/reactor_pool.hpp"
#include "reactor/thread_pool_reactor.hpp"
#include "sample_args.hpp"
#include "sample_stats.hpp"

namespace {

using reactor::Buffer;
using reactor::UniqueFd;

constexpr const char* program = "echo_server";

// One client connection: sends back what it reads. Owned by the framework (see Acceptor).
class EchoConnection final : public reactor::StreamHandler {
 public:
  // Any dispatcher StreamHandler accepts (a template, so no reactor type is named here).
  template <class Loop>
  EchoConnection(Loop& r, UniqueFd socket) : StreamHandler(r, std::move(socket)) {}

 protected:
  void on_data(Buffer& input) override {
    send(input.view());  // one write when the socket takes it all; else queued
    input.clear();
  }
};

// Calls `stop` on SIGINT / SIGTERM (delivered from the loop, not in signal context): ends the
// one reactor's loop, or every loop of the pool.
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

void print_banner(const reactor::SocketAddress& where, reactor::Backend backend,
                  std::size_t threads) {
  std::printf("%s listening on %s (backend %s)%s\n", program, where.to_string().c_str(),
              std::string(reactor::backend_name(backend)).c_str(),
              sample::threads_suffix(threads).c_str());
  std::fflush(stdout);
}

int cannot_listen(const reactor::SocketAddress& address, std::error_code ec) {
  std::fprintf(stderr, "%s: cannot listen on %s: %s\n", program, address.to_string().c_str(),
               ec.message().c_str());
  return 1;
}

// --threads 1: one Reactor on the main thread.
int serve_single(const sample::ServerArgs& args) {
  reactor::Reactor r(args.backend);
  sample::StatsReporter stats(r, args.stats);
  reactor::Acceptor<EchoConnection> acceptor(r);
  const auto address = reactor::SocketAddress::loopback_v4(args.port);
  if (auto ec = acceptor.open(address)) return cannot_listen(address, ec);
  Stopper stopper([&r] { r.end_event_loop(); });
  (void)r.register_signal(SIGINT, &stopper);
  (void)r.register_signal(SIGTERM, &stopper);
  print_banner(acceptor.local_address(), r.backend(), 1);
  if (auto ec = r.run_event_loop()) {
    std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
    return 1;
  }
  return 0;
}

// --threads N > 1: a ReactorPool, with one SO_REUSEPORT listener per reactor on the same port.
// Why SO_REUSEPORT rather than one acceptor + ReactorPool::hand_off here: an echo connection
// needs nothing from any other, so each reactor can accept its own clients and no connection
// ever crosses threads (hand_off costs every connection a post to another reactor and makes
// reactor 0's thread the accept funnel). The kernel spreads connections over the listeners by
// a hash of the peer's address and port, which is even for many clients (not for two or three).
int serve_pool(const sample::ServerArgs& args) {
  reactor::ReactorOptions options;
  options.backend = args.backend;
  reactor::ReactorPool pool(args.threads, options);
  reactor::AcceptorOptions accept_options;
  accept_options.reuse_port = true;
  // Built and registered here, before any loop thread starts (starting a thread orders these
  // writes before everything that thread does); destroyed after run() has joined every thread.
  std::vector<std::unique_ptr<reactor::Acceptor<EchoConnection>>> acceptors;
  auto address = reactor::SocketAddress::loopback_v4(args.port);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    acceptors.push_back(
        std::make_unique<reactor::Acceptor<EchoConnection>>(pool.at(i), accept_options));
    if (auto ec = acceptors.back()->open(address)) return cannot_listen(address, ec);
    address = acceptors.back()->local_address();  // --port 0: the others join the port picked
  }
  std::vector<std::unique_ptr<sample::StatsReporter<reactor::Reactor>>> stats;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    stats.push_back(std::make_unique<sample::StatsReporter<reactor::Reactor>>(
        pool.at(i), args.stats,
        "[reactor " + std::to_string(i) + "/" + std::to_string(pool.size()) + "]"));
  }
  Stopper stopper([&pool] { pool.end_event_loop(); });
  (void)pool.at(0).register_signal(SIGINT, &stopper);
  (void)pool.at(0).register_signal(SIGTERM, &stopper);
  // The banner comes from the last reactor's thread once it runs: by then every thread of the
  // pool exists and every signal is watched.
  (void)pool.post_to(pool.size() - 1, [address, backend = pool.at(0).backend(), n = pool.size()] {
    print_banner(address, backend, n);
  });
  (void)pool.run();  // reactor 0 on this thread, the others on their own; joins them all
  for (auto& s : stats) s->finish();  // in reactor order
  if (auto ec = pool.first_error()) {
    std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
    return 1;
  }
  return 0;
}

// --model tp: one ThreadPoolReactor, one acceptor, N threads taking turns in one demultiplexer.
// The services are the same EchoConnection: they see a Dispatcher either way.
int serve_thread_pool(const sample::ServerArgs& args) {
  reactor::ThreadPoolReactorOptions options;
  options.backend = args.backend;
  options.threads = args.threads;
  reactor::ThreadPoolReactor r(options);
  sample::StatsReporter stats(r, args.stats);
  reactor::Acceptor<EchoConnection> acceptor(r);
  const auto address = reactor::SocketAddress::loopback_v4(args.port);
  if (auto ec = acceptor.open(address)) return cannot_listen(address, ec);
  Stopper stopper([&r] { r.end_event_loop(); });
  (void)r.register_signal(SIGINT, &stopper);
  (void)r.register_signal(SIGTERM, &stopper);
  std::printf("%s listening on %s (backend %s) with %zu threads on one thread-pool reactor\n",
              program, acceptor.local_address().to_string().c_str(),
              std::string(reactor::backend_name(r.backend())).c_str(), args.threads);
  std::fflush(stdout);
  if (auto ec = r.run_event_loop()) {
    std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
    return 1;
  }
  // The acceptor and stopper end before the reactor; their registrations end with them.
  (void)r.retire(&acceptor);
  (void)r.retire(&stopper);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sample::ServerArgs args{.port = 7000};
  long max_fds = 0;
  std::string model = "pool";
  sample::ArgParser parser(program, "Echoes every byte back to the client that sent it.");
  sample::add_server_flags(parser, args);
  parser.integer("--max-fds", max_fds, 1, 1 << 24, "N",
                 "lower RLIMIT_NOFILE to N (to exercise descriptor exhaustion)");
  parser.choice("--model", model, {"pool", "tp"},
                "with --threads N > 1: pool = one reactor per thread, tp = one thread-pool "
                "reactor served by N threads (default pool)");
  if (auto status = parser.parse(argc, argv)) return *status;
  if (max_fds > 0) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = static_cast<rlim_t>(max_fds);
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("echo_server: setrlimit");
  }
  try {
    if (model == "tp") return serve_thread_pool(args);
    return args.threads == 1 ? serve_single(args) : serve_pool(args);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

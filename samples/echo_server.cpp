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
#include <sys/resource.h>

#include <cstdio>
#include <string>

#include "handlers/stream_handler.hpp"
#include "reactor/thread_pool_reactor.hpp"
#include "sample_server.hpp"

namespace {

using reactor::Buffer;
using reactor::UniqueFd;

constexpr sample::Program program{"echo_server"};

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

// --model tp: one ThreadPoolReactor, one acceptor, N threads taking turns in one demultiplexer.
// The services are the same EchoConnection: they see a Dispatcher either way.
int serve_thread_pool(const sample::ServerArgs& args) {
  reactor::ThreadPoolReactorOptions options;
  options.backend = args.backend;
  options.threads = args.threads;
  reactor::ThreadPoolReactor r(options);
  return sample::serve_on<EchoConnection>(
      program, r, args, sample::construct<EchoConnection>(),
      {.banner_suffix =
           " with " + std::to_string(args.threads) + " threads on one thread-pool reactor"});
}

}  // namespace

int main(int argc, char** argv) {
  sample::ServerArgs args{.port = 7000};
  long max_fds = 0;
  std::string model = "pool";
  sample::ArgParser parser(program.name, "Echoes every byte back to the client that sent it.");
  sample::add_server_flags(parser, args);
  parser.integer("--max-fds", max_fds, 1, 1 << 24, "N",
                 "lower RLIMIT_NOFILE to N (to exercise descriptor exhaustion)");
  parser.choice("--model", model, {"pool", "tp"},
                "with --threads N > 1: pool = one reactor per thread, tp = one thread-pool "
                "reactor served by N threads (default pool)");
  return sample::run_main(program, parser, argc, argv, [&] {
    if (max_fds > 0) {
      rlimit lim{};
      ::getrlimit(RLIMIT_NOFILE, &lim);
      lim.rlim_cur = static_cast<rlim_t>(max_fds);
      if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("echo_server: setrlimit");
    }
    if (model == "tp") return serve_thread_pool(args);
    // --threads N > 1: one SO_REUSEPORT listener per reactor rather than one acceptor handing
    // off, because an echo connection needs nothing from any other: each reactor accepts its own
    // clients and no connection ever crosses threads (a hand-off costs every connection a post
    // to another reactor and makes reactor 0's thread the accept funnel). The kernel's spread is
    // even for many clients, not for two or three.
    return sample::serve<EchoConnection>(program, args, sample::Spread::reuse_port);
  });
}

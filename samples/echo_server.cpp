// echo_server: every byte a client sends comes back to it, in order. The canonical service built
// from the framework's parts: an Acceptor that makes one EchoConnection (a StreamHandler) per
// client. Backpressure, partial writes, resets and descriptor exhaustion are the handlers' job.
//
//   echo_server [--port N] [--backend select|poll|epoll] [--max-fds N]
//
// --port 0 picks a free port; the banner on stdout says which. --max-fds lowers RLIMIT_NOFILE
// (for exercising descriptor exhaustion). SIGINT / SIGTERM end the program with status 0.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "handlers/acceptor.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "sample_stats.hpp"

namespace {

using reactor::Buffer;
using reactor::Reactor;
using reactor::UniqueFd;

// One client connection: sends back what it reads. Owned by the framework (see Acceptor).
class EchoConnection final : public reactor::StreamHandler {
 public:
  EchoConnection(Reactor& r, UniqueFd socket) : StreamHandler(r, std::move(socket)) {}

 protected:
  void on_data(Buffer& input) override {
    send(input.view());  // one write when the socket takes it all; else queued
    input.clear();
  }
};

// Ends the event loop on SIGINT / SIGTERM (delivered from the loop, not in signal context).
class Stopper final : public reactor::EventHandler {
 public:
  explicit Stopper(Reactor& r) : reactor_(r) {}
  int handle_signal(int /*signum*/) override {
    reactor_.end_event_loop();
    return 0;
  }

 private:
  Reactor& reactor_;
};

struct Args {
  int port = 7000;
  reactor::Backend backend = reactor::Backend::best;
  long max_fds = 0;
};

bool parse_args(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    if (flag == "--port") {
      char* end = nullptr;
      const long port = std::strtol(value, &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) return false;
      args.port = static_cast<int>(port);
    } else if (flag == "--backend") {
      if (reactor::parse_backend(value, args.backend)) return false;
    } else if (flag == "--max-fds") {
      args.max_fds = std::atol(value);
      if (args.max_fds <= 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool show_stats = sample::take_stats_flag(argc, argv);
  Args args;
  if (!parse_args(argc, argv, args)) {
    std::fprintf(stderr, "usage: %s [--port N] [--backend select|poll|epoll] [--max-fds N]\n",
                 argv[0]);
    return 2;
  }
  if (args.max_fds > 0) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = static_cast<rlim_t>(args.max_fds);
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("echo_server: setrlimit");
  }
  try {
    Reactor r(args.backend);
    sample::StatsReporter stats(r, show_stats);
    reactor::Acceptor<EchoConnection> acceptor(r);
    const auto address = reactor::SocketAddress::loopback_v4(static_cast<std::uint16_t>(args.port));
    if (auto ec = acceptor.open(address)) {
      std::fprintf(stderr, "echo_server: cannot listen on %s: %s\n", address.to_string().c_str(),
                   ec.message().c_str());
      return 1;
    }
    Stopper stopper(r);
    (void)r.register_signal(SIGINT, &stopper);
    (void)r.register_signal(SIGTERM, &stopper);
    std::printf("echo_server listening on %s (backend %s)\n",
                acceptor.local_address().to_string().c_str(),
                std::string(reactor::backend_name(r.backend())).c_str());
    std::fflush(stdout);
    if (auto ec = r.run_event_loop()) {
      std::fprintf(stderr, "echo_server: %s\n", ec.message().c_str());
      return 1;
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}

// http_server: a small HTTP/1.1 origin server on the Reactor, built from the framework's
// production pieces: an Acceptor creates one StreamHandler per connection, which parses every
// complete request in its input (keep-alive and pipelining), appends all the responses and sends
// them with one write. Malformed requests get 400 / 413 / 414 / 431 / 501 / 505 and a close.
//
//   http_server [--port N] [--backend NAME] [--threads N] [--stats]   (port 0: pick a free one)
//
// --threads N > 1 runs a ReactorPool: N single-threaded reactors, one thread each, each with its
// own SO_REUSEPORT listener on the same port (see serve_pool). SIGINT / SIGTERM exit with 0.
//
// Paths: GET|HEAD /, /index.html, /health, /json; POST /echo (answers with the request body).
#include <signal.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "reactor/reactor_pool.hpp"
#include "sample_args.hpp"
#include "sample_stats.hpp"
#include "samples/http/http_parser.hpp"
#include "samples/http/http_service.hpp"

namespace {

constexpr const char* program = "http_server";

// Request limits; the stream's input cap sits above the largest acceptable request, so the parser
// (which answers with the proper status) always speaks first.
const http::Limits limits{};

reactor::StreamOptions stream_options() {
  reactor::StreamOptions o;
  o.max_input = limits.max_head + limits.max_body + 64 * 1024;
  o.idle_timeout = std::chrono::seconds(60);  // keep-alive connections do not live forever
  return o;
}

// One client connection; owned by the framework (the Acceptor hands it over).
class HttpConnection final : public reactor::StreamHandler {
 public:
  // Any dispatcher StreamHandler accepts (a template, so no reactor type is named here).
  template <class Loop>
  HttpConnection(Loop& r, reactor::UniqueFd socket)
      : StreamHandler(r, std::move(socket), stream_options()) {}

 protected:
  // Answers every complete request in `input` in order, then sends all answers at once.
  void on_data(reactor::Buffer& input) override {
    out_.clear();
    bool must_close = false;
    while (!input.empty() && !must_close) {
      const auto result = http::parse_request({input.data(), input.size()}, request_, limits);
      if (result.status == http::ParseStatus::incomplete) break;
      if (result.status == http::ParseStatus::error) {
        // What follows a malformed request cannot be framed: answer, then close.
        http::respond_error(result.status_code, out_);
        input.clear();
        must_close = true;
        break;
      }
      http::respond(request_, out_);  // before consume: request_ points into input
      input.consume(result.consumed);
      must_close = !request_.keep_alive;
    }
    if (!out_.empty()) send(std::string_view(out_));
    if (must_close) {
      input.clear();  // requests pipelined after "Connection: close" are not answered
      close();
    }
  }

 private:
  http::Request request_;
  std::string out_;  // responses of one batch; its capacity is reused
};

// Calls `stop` on SIGINT / SIGTERM: ends the one reactor's loop, or every loop of the pool.
class Stopper final : public reactor::EventHandler {
 public:
  explicit Stopper(std::function<void()> stop) : stop_(std::move(stop)) {}
  int handle_signal(int) override {
    stop_();
    return 0;
  }

 private:
  std::function<void()> stop_;
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

// --threads 1: one Reactor on the main thread.
int serve_single(const sample::ServerArgs& args) {
  reactor::Reactor r(args.backend);
  sample::StatsReporter stats(r, args.stats);
  reactor::Acceptor<HttpConnection> acceptor(r);
  if (auto ec = acceptor.open(reactor::SocketAddress::loopback_v4(args.port))) {
    return cannot_listen(args.port, ec);
  }
  Stopper stopper([&r] { r.end_event_loop(); });
  (void)r.register_signal(SIGINT, &stopper);
  (void)r.register_signal(SIGTERM, &stopper);
  print_banner(acceptor.local_address().port(), r.backend(), 1);
  if (auto ec = r.run_event_loop()) {
    std::fprintf(stderr, "%s: %s\n", program, ec.message().c_str());
    return 1;
  }
  return 0;
}

// --threads N > 1: a ReactorPool with one SO_REUSEPORT listener per reactor on the same port.
// Why SO_REUSEPORT rather than one acceptor + ReactorPool::hand_off here: HTTP clients open
// connections at a high rate (HTTP/1.0, "Connection: close", load generators with many
// connections), and the handlers share nothing; each reactor accepting its own clients keeps the
// accept path parallel and no connection ever crosses threads, where hand_off would make reactor
// 0's thread the accept funnel and cost every connection a post to another reactor.
int serve_pool(const sample::ServerArgs& args) {
  reactor::ReactorOptions options;
  options.backend = args.backend;
  reactor::ReactorPool pool(args.threads, options);
  reactor::AcceptorOptions accept_options;
  accept_options.reuse_port = true;
  // Registered before any loop thread starts; destroyed after run() has joined them all.
  std::vector<std::unique_ptr<reactor::Acceptor<HttpConnection>>> acceptors;
  std::uint16_t port = args.port;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    acceptors.push_back(
        std::make_unique<reactor::Acceptor<HttpConnection>>(pool.at(i), accept_options));
    if (auto ec = acceptors.back()->open(reactor::SocketAddress::loopback_v4(port))) {
      return cannot_listen(port, ec);
    }
    port = acceptors.back()->local_address().port();  // --port 0: the others join this port
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
  (void)pool.post_to(pool.size() - 1, [port, backend = pool.at(0).backend(), n = pool.size()] {
    print_banner(port, backend, n);
  });
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
  sample::ServerArgs args{.port = 8080};
  sample::ArgParser parser(program,
                           "A small HTTP/1.1 server: GET|HEAD /, /index.html, /health, /json; "
                           "POST /echo.");
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

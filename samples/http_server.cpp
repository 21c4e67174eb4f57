// http_server: a small HTTP/1.1 origin server on the Reactor, built from the framework's
// production pieces: an Acceptor creates one StreamHandler per connection, which parses every
// complete request in its input (keep-alive and pipelining), appends all the responses and sends
// them with one write. Malformed requests get 400 / 413 / 414 / 431 / 501 / 505 and a close.
//
//   http_server [--port N] [--backend select|poll|epoll]     (port 0: pick a free one)
//
// Paths: GET|HEAD /, /index.html, /health, /json; POST /echo (answers with the request body).
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "handlers/acceptor.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
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
  HttpConnection(reactor::Reactor& r, reactor::UniqueFd socket)
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

// Ends the event loop on SIGINT / SIGTERM.
class Stopper final : public reactor::EventHandler {
 public:
  explicit Stopper(reactor::Reactor& r) : reactor_(r) {}
  int handle_signal(int) override {
    reactor_.end_event_loop();
    return 0;
  }

 private:
  reactor::Reactor& reactor_;
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
  std::uint16_t port = 8080;
  reactor::Backend backend = reactor::Backend::best;
  if (!parse_args(argc, argv, port, backend)) {
    std::fprintf(stderr, "usage: %s [--port N] [--backend select|poll|epoll]\n", program);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    reactor::Reactor r(backend);
    sample::StatsReporter stats(r, show_stats);
    reactor::Acceptor<HttpConnection> acceptor(r);
    if (auto ec = acceptor.open(reactor::SocketAddress::loopback_v4(port))) {
      std::fprintf(stderr, "%s: cannot listen on port %u: %s\n", program, port,
                   ec.message().c_str());
      return 1;
    }
    Stopper stopper(r);
    (void)r.register_signal(SIGINT, &stopper);
    (void)r.register_signal(SIGTERM, &stopper);
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

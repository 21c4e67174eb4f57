// http_server: a small HTTP/1.1 origin server on the Reactor, built from the framework's
// production pieces: an Acceptor creates one StreamHandler per connection, which parses every
// complete request in its input (keep-alive and pipelining), appends all the responses and sends
// them with one write. Malformed requests get 400 / 413 / 414 / 431 / 501 / 505 and a close.
//
//   http_server [--port N] [--backend NAME] [--threads N] [--stats]   (port 0: pick a free one)
//
// --threads N > 1 runs a ReactorPool: N single-threaded reactors, one thread each, each with its
// own SO_REUSEPORT listener on the same port (see main). SIGINT / SIGTERM exit with 0.
//
// Paths: GET|HEAD /, /index.html, /health, /json; POST /echo (answers with the request body).
#include <signal.h>

#include <string>
#include <string_view>

#include "handlers/stream_handler.hpp"
#include "sample_server.hpp"
#include "samples/http/http_parser.hpp"
#include "samples/http/http_service.hpp"

namespace {

constexpr sample::Program program{.name = "http_server", .listen_error_names_port = true};

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

// --threads N > 1: one SO_REUSEPORT listener per reactor rather than one acceptor handing off,
// because HTTP clients open connections at a high rate (HTTP/1.0, "Connection: close", load
// generators with many connections) and the handlers share nothing: each reactor accepting its
// own clients keeps the accept path parallel and no connection ever crosses threads, where a
// hand-off would make reactor 0's thread the accept funnel and cost every connection a post to
// another reactor.
int serve(const sample::ServerArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  return sample::serve<HttpConnection>(program, args, sample::Spread::reuse_port);
}

}  // namespace

int main(int argc, char** argv) {
  return sample::server_main(
      program, argc, argv, {.port = 8080},
      "A small HTTP/1.1 server: GET|HEAD /, /index.html, /health, /json; POST /echo.", serve);
}

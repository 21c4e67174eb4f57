// asio_echo: the Boost.Asio echo server of the comparison, written the way an Asio user would
// write it: one session object per connection alternating async_read_some and async_write. With
// one thread (the default) one single-threaded io_context (concurrency hint 1, so Asio skips its
// locks); with --threads N > 1 the usual multi-threaded Asio server: one io_context (hint N) whose
// run() is called from N threads. A session has one operation pending at a time, so its handlers
// never run concurrently and need no strand. Benchmark-only: the library never links Asio.
//
//   asio_echo [--port N] [--backend asio] [--threads N]
#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "server_common.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// One connection; kept alive by the handler that is pending on it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { read_next(); }

 private:
  void read_next() {
    socket_.async_read_some(asio::buffer(data_), [self = shared_from_this()](
                                                     boost::system::error_code ec, std::size_t n) {
      if (!ec) self->write_back(n);
    });
  }

  void write_back(std::size_t n) {
    asio::async_write(socket_, asio::buffer(data_.data(), n),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (!ec) self->read_next();
                      });
  }

  tcp::socket socket_;
  std::array<char, 16384> data_;
};

// Accepts forever, one Session per connection.
class Server {
 public:
  Server(asio::io_context& io, tcp::acceptor& acceptor) : io_(io), acceptor_(acceptor) {}

  void accept_next() {
    acceptor_.async_accept(io_, [this](boost::system::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket))->start();
      }
      accept_next();
    });
  }

 private:
  asio::io_context& io_;
  tcp::acceptor& acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  bench::ServerArgs args;
  if (!bench::parse_server_args(argc, argv, "asio", args, true)) return 2;
  const int threads = args.threads;
  try {
    asio::io_context io(threads);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(),
                                             static_cast<unsigned short>(args.port)));
    bench::print_banner("asio_echo", acceptor.local_endpoint().port(), "asio");
    Server server(io, acceptor);
    server.accept_next();
    std::vector<std::thread> others;
    for (int i = 1; i < threads; ++i) others.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : others) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}

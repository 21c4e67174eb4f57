// asio_echo: the Boost.Asio echo server of the comparison, written the way an Asio user would
// write it: one single-threaded io_context (concurrency hint 1, so Asio skips its locks), one
// session object per connection alternating async_read_some and async_write. Benchmark-only:
// the library never links Asio.
//
//   asio_echo [--port N] [--backend asio]
#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <memory>

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
  if (!bench::parse_server_args(argc, argv, "asio", args)) {
    std::fprintf(stderr, "usage: %s [--port N] [--backend asio]\n", argv[0]);
    return 2;
  }
  try {
    asio::io_context io(1);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(),
                                             static_cast<unsigned short>(args.port)));
    bench::print_banner("asio_echo", acceptor.local_endpoint().port(), "asio");
    Server server(io, acceptor);
    server.accept_next();
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}

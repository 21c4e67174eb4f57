// Fixture and helpers of the handler tests: a Reactor per backend, a configurable service
// handler that counts its life (so ownership and the "on_close is last" promise can be
// checked), and non-blocking loopback clients driven from the test thread.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/connector.hpp"
#include "handlers/socket_address.hpp"
#include "handlers/stream_handler.hpp"
#include "loopback_client.hpp"
#include "test_support.hpp"

namespace reactor::test {

/// What the test services did, shared by all instances of one test.
struct ServiceLog {
  int live = 0;                          // constructed and not yet destroyed
  int opened = 0;                        // on_open calls
  int closed = 0;                        // on_close calls
  int after_close = 0;                   // hooks that ran after on_close (must stay 0)
  std::vector<std::error_code> reasons;  // on_close reasons, in order
  std::string received;                  // everything on_data saw, all connections
};

/// A service handler whose behaviour tests set with std::function hooks; echoes by default.
class TestService : public StreamHandler {
 public:
  TestService(Dispatcher& r, UniqueFd fd, ServiceLog& log, const StreamOptions& options = {})
      : StreamHandler(r, std::move(fd), options), log_(log) {
    ++log_.live;
  }
  ~TestService() override { --log_.live; }

  std::function<void(TestService&)> open_hook;
  std::function<void(TestService&, Buffer&)> data_hook;
  std::function<void(TestService&)> peer_closed_hook;
  std::function<void(TestService&)> drained_hook;

  using StreamHandler::handle_input;

 protected:
  void on_open() override {
    check();
    ++log_.opened;
    if (open_hook) open_hook(*this);
  }
  void on_data(Buffer& in) override {
    check();
    log_.received.append(in.view());
    if (data_hook) {
      data_hook(*this, in);
      return;
    }
    send(in.view());
    in.clear();
  }
  void on_peer_closed() override {
    check();
    if (peer_closed_hook) {
      peer_closed_hook(*this);
    } else {
      StreamHandler::on_peer_closed();
    }
  }
  void on_drained() override {
    check();
    if (drained_hook) drained_hook(*this);
  }
  void on_close(std::error_code reason) override {
    check();
    ++log_.closed;
    log_.reasons.push_back(reason);
    closed_ = true;
  }

 private:
  void check() {
    if (closed_) ++log_.after_close;
  }
  ServiceLog& log_;
  bool closed_ = false;
};

/// A non-blocking client socket connected to `address` (connect may still be in progress).
inline UniqueFd connect_client(const SocketAddress& address) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  if (::connect(fd.get(), address.native(), address.length()) != 0 && errno != EINPROGRESS &&
      errno != EAGAIN) {
    fd.reset();
  }
  return fd;
}

/// Sends what the socket takes of `out` starting at `sent`; advances `sent`.
inline void pump_out(int fd, const std::string& out, std::size_t& sent) {
  while (sent < out.size()) {
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

/// Appends what is readable on `fd` to `in`; returns false on EOF or error.
inline bool pump_in(int fd, std::string& in) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOTCONN;
  }
}

using loopback::random_bytes;

/// Fixture: a fresh Reactor on the backend under test.
class HandlerTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override { reactor_ = std::make_unique<Reactor>(GetParam().make()); }
  void TearDown() override { reactor_.reset(); }
  Reactor& r() { return *reactor_; }

  /// An acceptor of TestServices on `address`, each made with `options` and `setup`.
  std::unique_ptr<Acceptor<TestService>> listen(const SocketAddress& address, ServiceLog& log,
                                                const StreamOptions& options = {},
                                                std::function<void(TestService&)> setup = {}) {
    auto a = std::make_unique<Acceptor<TestService>>(
        r(), [&log, options, setup](Dispatcher& rr, UniqueFd fd, const SocketAddress&) {
          auto s = std::make_unique<TestService>(rr, std::move(fd), log, options);
          if (setup) setup(*s);
          return s;
        });
    EXPECT_FALSE(a->open(address));
    return a;
  }

  /// A log that outlives the reactor, so handlers closed by its destruction can still write.
  ServiceLog& new_log() { return logs_.emplace_back(); }

  std::deque<ServiceLog> logs_;  // declared first: destroyed after the reactor
  std::unique_ptr<Reactor> reactor_;
};

}  // namespace reactor::test

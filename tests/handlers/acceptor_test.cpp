// Acceptor on every backend: IPv4, IPv6 and Unix-domain listeners, batches of connections, one
// framework-owned service handler per connection, and survival of descriptor exhaustion.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

#include "duration_edges.hpp"
#include "handler_test_support.hpp"

namespace reactor::test {
namespace {

using AcceptorTest = HandlerTest;

// Connects `n` clients to `address`, has each send its own payload, and checks every echo.
void echo_round(Reactor& r, const SocketAddress& address, int n, std::size_t size) {
  std::vector<UniqueFd> clients;
  std::vector<std::string> out(n), in(n);
  std::vector<std::size_t> sent(n, 0);
  for (int i = 0; i < n; ++i) {
    clients.push_back(connect_client(address));
    ASSERT_TRUE(clients.back().valid());
    out[i] = random_bytes(size, static_cast<unsigned>(i + 1));
  }
  ASSERT_TRUE(run_until(r, [&] {
    bool all = true;
    for (int i = 0; i < n; ++i) {
      pump_out(clients[i].get(), out[i], sent[i]);
      pump_in(clients[i].get(), in[i]);
      all = all && in[i].size() >= out[i].size();
    }
    return all;
  }));
  for (int i = 0; i < n; ++i) EXPECT_TRUE(in[i] == out[i]) << "client " << i;
}

TEST_P(AcceptorTest, ServesIpv4) {
  ServiceLog& log = new_log();
  auto a = listen(SocketAddress::loopback_v4(0), log);
  ASSERT_NE(a->local_address().port(), 0);
  echo_round(r(), a->local_address(), 20, 10000);
  EXPECT_EQ(a->accepted(), 20U);
  EXPECT_EQ(log.opened, 20);
}

TEST_P(AcceptorTest, ServesIpv6) {
  ServiceLog& log = new_log();
  Acceptor<TestService> probe(r(), [&](Dispatcher& rr, UniqueFd fd, const SocketAddress&) {
    return std::make_unique<TestService>(rr, std::move(fd), log);
  });
  if (auto ec = probe.open(SocketAddress::loopback_v6(0))) {
    GTEST_SKIP() << "no IPv6 loopback here: " << ec.message();
  }
  echo_round(r(), probe.local_address(), 5, 5000);
  EXPECT_EQ(log.opened, 5);
}

TEST_P(AcceptorTest, ServesUnixDomainAndRemovesItsSocketFile) {
  ServiceLog& log = new_log();
  const std::string path = "/tmp/reactor-acceptor-" + std::to_string(::getpid()) + ".sock";
  auto address = SocketAddress::unix_path(path);
  ASSERT_TRUE(address);
  auto a = listen(*address, log);
  echo_round(r(), *address, 5, 5000);
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
  a->close();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST_P(AcceptorTest, BindFailureIsReportedAsAnError) {
  ServiceLog& log = new_log();
  auto a = listen(SocketAddress::loopback_v4(0), log);
  Acceptor<TestService> second(r(), [&](Dispatcher& rr, UniqueFd fd, const SocketAddress&) {
    return std::make_unique<TestService>(rr, std::move(fd), log);
  });
  EXPECT_EQ(second.open(a->local_address()), std::errc::address_in_use);
  EXPECT_EQ(second.open(SocketAddress()), errc::invalid_argument);
}

TEST_P(AcceptorTest, ReusePortLetsTwoAcceptorsShareAPort) {
  ServiceLog& log = new_log();
  AcceptorOptions o;
  o.reuse_port = true;
  auto factory = [&](Dispatcher& rr, UniqueFd fd, const SocketAddress&) {
    return std::make_unique<TestService>(rr, std::move(fd), log);
  };
  Acceptor<TestService> a(r(), factory, o);
  ASSERT_FALSE(a.open(SocketAddress::loopback_v4(0)));
  Acceptor<TestService> b(r(), factory, o);
  EXPECT_FALSE(b.open(a.local_address()));
}

TEST_P(AcceptorTest, ABurstIsAcceptedInBatchesAndEveryHandlerIsFreedAtTheEnd) {
  ServiceLog& log = new_log();
  auto a = listen(SocketAddress::loopback_v4(0), log);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 300; ++i) clients.push_back(connect_client(a->local_address()));
  ASSERT_TRUE(run_until(r(), [&] { return log.opened == 300; }));
  clients.clear();  // every peer closes
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
  EXPECT_EQ(log.closed, 300);
  EXPECT_EQ(log.after_close, 0);
  EXPECT_EQ(r().handler_count(), 1U);  // just the listener
}

TEST_P(AcceptorTest, FactoryReturningNullRefusesTheConnection) {
  Acceptor<TestService> a(r(), [](Dispatcher&, UniqueFd, const SocketAddress&) {
    return std::unique_ptr<TestService>();
  });
  ASSERT_FALSE(a.open(SocketAddress::loopback_v4(0)));
  UniqueFd c = connect_client(a.local_address());
  std::string got;
  ASSERT_TRUE(run_until(r(), [&] { return !pump_in(c.get(), got); }));  // closed at once
  EXPECT_EQ(a.accepted(), 1U);
}

// Lowers RLIMIT_NOFILE so that no descriptor can be opened; restores it on destruction.
class FdLimit {
 public:
  FdLimit() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    const int lowest_free = ::dup(0);
    ::close(lowest_free);
    rlimit tight = saved_;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);
    ok_ = ::setrlimit(RLIMIT_NOFILE, &tight) == 0;
  }
  ~FdLimit() { restore(); }
  void restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

// The classic EMFILE spin: the listener stays readable while accept fails. The acceptor must
// back off (few loop iterations, not a busy loop) and serve the waiting clients once
// descriptors are free again.
TEST_P(AcceptorTest, DescriptorExhaustionBacksOffWithoutSpinningThenServesAgain) {
  ServiceLog& log = new_log();
  auto a = listen(SocketAddress::loopback_v4(0), log);
  // Client sockets are made first: under the limit they could not be.
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  }
  std::size_t loops = 0;
  {
    FdLimit limit;
    ASSERT_TRUE(limit.ok());
    for (auto& c : clients) {
      const SocketAddress& to = a->local_address();
      ::connect(c.get(), to.native(), to.length());  // EINPROGRESS: completes in the backlog
    }
    const bool backed_off = run_until(r(), [&] {
      ++loops;
      return a->backoffs() >= 3;
    });
    limit.restore();
    ASSERT_TRUE(backed_off);
  }
  // 3 back-offs take >= 10+20+40 ms; a spinning loop would have iterated thousands of times.
  EXPECT_LT(loops, 60U);
  EXPECT_EQ(log.opened, 0);
  // Descriptors are available again: the waiting clients are served.
  std::vector<std::string> in(3);
  std::vector<std::size_t> sent(3, 0);
  const std::string x = "x";
  ASSERT_TRUE(run_until(r(), [&] {
    bool all = true;
    for (std::size_t i = 0; i < clients.size(); ++i) {
      pump_out(clients[i].get(), x, sent[i]);
      pump_in(clients[i].get(), in[i]);
      all = all && !in[i].empty();
    }
    return all;
  }));
  EXPECT_EQ(log.opened, 3);
  for (const auto& got : in) EXPECT_EQ(got, "x");
  EXPECT_FALSE(a->backing_off());
}

// Back-off pauses at the edges of Duration's range (issue 13), under descriptor exhaustion. A
// pause past the end of the clock keeps the listener paused: one back-off and a quiet loop,
// not a pause that overflowed into the past and a spin. Zero, negative and 1 ns pauses last
// about one turn of the loop: accepting is retried each turn, every retry a back-off, never a
// refused timer that leaves the loop spinning on a readable listener.
TEST_P(AcceptorTest, BackOffAtEveryDurationEdge) {
  struct Witness : EventHandler {
    int handle_timeout(TimePoint, const void*) override {
      fired = true;
      return 0;
    }
    bool fired = false;
  };
  for (const DurationEdge& e : duration_edges()) {
    AcceptorOptions o;
    o.backoff_initial = e.value;
    o.backoff_max = Duration::max();
    ServiceLog& log = new_log();
    Acceptor<TestService> a(
        r(),
        [&log](Dispatcher& rr, UniqueFd fd, const SocketAddress&) {
          return std::make_unique<TestService>(rr, std::move(fd), log);
        },
        o);
    ASSERT_FALSE(a.open(SocketAddress::loopback_v4(0))) << e;
    UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    std::size_t loops = 0;
    {
      FdLimit limit;
      ASSERT_TRUE(limit.ok());
      const SocketAddress& to = a.local_address();
      ::connect(client.get(), to.native(), to.length());  // completes in the backlog
      Witness witness;
      ASSERT_TRUE(r().schedule_timer(&witness, nullptr, milliseconds(30)));
      const bool ran = run_until(r(), [&] {
        ++loops;
        return witness.fired;
      });
      limit.restore();
      ASSERT_TRUE(ran) << e;
    }
    EXPECT_EQ(log.opened, 0) << e;
    if (e.value > std::chrono::seconds(1)) {
      EXPECT_EQ(a.backoffs(), 1U) << e;
      EXPECT_TRUE(a.backing_off()) << e;
      EXPECT_LT(loops, 20U) << e << ": the loop spun";
    } else {
      EXPECT_GE(a.backoffs(), 2U) << e;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, AcceptorTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

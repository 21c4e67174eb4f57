// Connector on every backend: connects complete through the reactor, and the service handler
// learns the outcome: on_open on success, on_close with the exact error otherwise.
#include <unistd.h>

#include <chrono>

#include "handler_test_support.hpp"

namespace reactor::test {
namespace {

using ConnectorTest = HandlerTest;

TEST_P(ConnectorTest, ConnectsAndTheHandlerTalksToTheServer) {
  ServiceLog& server_log = new_log();
  ServiceLog& client_log = new_log();
  auto a = listen(SocketAddress::loopback_v4(0), server_log);
  Connector connector(r());
  auto client = std::make_unique<TestService>(r(), UniqueFd(), client_log);
  client->open_hook = [](TestService& self) { self.send("hello"); };
  client->data_hook = [](TestService& self, Buffer& in) {
    if (in.view() == "hello") self.close();
  };
  ASSERT_FALSE(connector.connect(std::move(client), a->local_address(), milliseconds(2000)));
  EXPECT_EQ(connector.pending(), 1U);
  EXPECT_EQ(client_log.opened, 0);  // never inside connect()
  ASSERT_TRUE(run_until(r(), [&] { return client_log.closed == 1; }));
  EXPECT_EQ(client_log.opened, 1);
  EXPECT_FALSE(client_log.reasons.at(0));
  EXPECT_EQ(client_log.received, "hello");
  EXPECT_EQ(client_log.live, 0);
  EXPECT_EQ(connector.pending(), 0U);
}

TEST_P(ConnectorTest, RefusedConnectionDeliversEconnrefused) {
  // A port that was just bound and released: nobody listens there.
  std::uint16_t port = 0;
  {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    const SocketAddress any = SocketAddress::loopback_v4(0);
    ASSERT_EQ(::bind(fd.get(), any.native(), any.length()), 0);
    port = SocketAddress::local_of(fd.get()).value().port();
  }
  ServiceLog& log = new_log();
  Connector connector(r());
  ASSERT_FALSE(connector.connect(std::make_unique<TestService>(r(), UniqueFd(), log),
                                 SocketAddress::loopback_v4(port)));
  ASSERT_TRUE(run_until(r(), [&] { return log.closed == 1; }));
  EXPECT_EQ(log.opened, 0);
  EXPECT_EQ(log.reasons.at(0), std::errc::connection_refused);
  EXPECT_EQ(log.live, 0);
}

TEST_P(ConnectorTest, MissingUnixSocketDeliversEnoentFromTheLoop) {
  ServiceLog& log = new_log();
  Connector connector(r());
  auto address =
      SocketAddress::unix_path("/tmp/reactor-no-such-socket-" + std::to_string(::getpid()));
  ASSERT_TRUE(address);
  ASSERT_FALSE(connector.connect(std::make_unique<TestService>(r(), UniqueFd(), log), *address));
  EXPECT_EQ(log.closed, 0);  // reported later, from the loop
  ASSERT_TRUE(run_until(r(), [&] { return log.closed == 1; }));
  EXPECT_EQ(log.reasons.at(0), std::errc::no_such_file_or_directory);
}

// A listener whose accept queue is full drops new SYNs, so the connect cannot complete and the
// connector's deadline must fire.
TEST_P(ConnectorTest, TimeoutDeliversTimedOut) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  const SocketAddress any = SocketAddress::loopback_v4(0);
  ASSERT_EQ(::bind(listener.get(), any.native(), any.length()), 0);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  const SocketAddress to = *SocketAddress::local_of(listener.get());
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 3; ++i) fillers.push_back(connect_client(to));
  ServiceLog& log = new_log();
  Connector connector(r());
  const auto start = Clock::now();
  ASSERT_FALSE(connector.connect(std::make_unique<TestService>(r(), UniqueFd(), log), to,
                                 milliseconds(150)));
  ASSERT_TRUE(run_until(r(), [&] { return log.closed == 1; }));
  if (log.reasons.at(0) != std::errc::timed_out) {
    GTEST_SKIP() << "kernel completed the connect despite the full backlog: "
                 << log.reasons[0].message();
  }
  EXPECT_GE(Clock::now() - start, milliseconds(150));
  EXPECT_EQ(log.opened, 0);
  EXPECT_EQ(connector.pending(), 0U);
}

TEST_P(ConnectorTest, DestroyingTheConnectorCancelsPendingConnects) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  const SocketAddress any = SocketAddress::loopback_v4(0);
  ASSERT_EQ(::bind(listener.get(), any.native(), any.length()), 0);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  ServiceLog& log = new_log();
  {
    Connector connector(r());
    for (int i = 0; i < 3; ++i) {
      ASSERT_FALSE(connector.connect(std::make_unique<TestService>(r(), UniqueFd(), log),
                                     *SocketAddress::local_of(listener.get())));
    }
  }
  EXPECT_EQ(log.closed, 3);
  EXPECT_EQ(log.live, 0);
  for (auto ec : log.reasons) EXPECT_EQ(ec, std::errc::operation_canceled);
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(ConnectorTest, RejectsNullHandlers) {
  Connector connector(r());
  EXPECT_EQ(connector.connect(nullptr, SocketAddress::loopback_v4(1)), errc::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConnectorTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

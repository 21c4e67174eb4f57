// DatagramHandler on every backend: a UDP echo endpoint on IPv4 and IPv6 loopback.
#include <chrono>

#include "handler_test_support.hpp"
#include "handlers/datagram_handler.hpp"

namespace reactor::test {
namespace {

using DatagramTest = HandlerTest;

class UdpEcho final : public DatagramHandler {
 public:
  using DatagramHandler::DatagramHandler;
  int received = 0;
  int truncated = 0;
  bool echo_back = true;
  std::string last;

 protected:
  void on_datagram(std::string_view bytes, const SocketAddress& from, bool cut) override {
    ++received;
    truncated += cut ? 1 : 0;
    last = std::string(bytes);
    if (echo_back) (void)send_to(bytes, from);
  }
};

void udp_round_trip(Reactor& r, const SocketAddress& bind_to) {
  UdpEcho echo(r);
  if (auto ec = echo.open(bind_to)) GTEST_SKIP() << ec.message();
  UdpEcho client(r);
  client.echo_back = false;
  ASSERT_FALSE(client.open(bind_to));
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(client.send_to("datagram " + std::to_string(i), echo.local_address()));
  }
  ASSERT_TRUE(run_until(r, [&] { return client.received >= 10; }));
  EXPECT_EQ(echo.received, 10);
  EXPECT_EQ(client.received, 10);
  EXPECT_EQ(client.last.rfind("datagram ", 0), 0U);
  client.close();
  echo.close();
  EXPECT_EQ(r.handler_count(), 0U);
}

TEST_P(DatagramTest, EchoesOverIpv4) { udp_round_trip(r(), SocketAddress::loopback_v4(0)); }

TEST_P(DatagramTest, EchoesOverIpv6) { udp_round_trip(r(), SocketAddress::loopback_v6(0)); }

TEST_P(DatagramTest, ReportsTruncatedDatagrams) {
  DatagramOptions o;
  o.max_datagram = 16;
  UdpEcho small(r(), o);
  ASSERT_FALSE(small.open(SocketAddress::loopback_v4(0)));
  UdpEcho sender(r());
  sender.echo_back = false;
  ASSERT_FALSE(sender.open(SocketAddress::loopback_v4(0)));
  ASSERT_FALSE(sender.send_to(std::string(100, 'x'), small.local_address()));
  ASSERT_TRUE(run_until(r(), [&] { return small.received == 1; }));
  EXPECT_EQ(small.truncated, 1);
  EXPECT_EQ(small.last, std::string(16, 'x'));
  ASSERT_TRUE(run_until(r(), [&] { return sender.received == 1; }));
  EXPECT_EQ(sender.last, std::string(16, 'x'));
}

INSTANTIATE_TEST_SUITE_P(Backends, DatagramTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

// SocketAddress parsing and printing; Buffer and OutputQueue bookkeeping (no reactor needed).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdint>

#include "handlers/buffer.hpp"
#include "handlers/socket_address.hpp"
#include "handlers/stream_handler.hpp"

namespace reactor {
namespace {

TEST(SocketAddress, ParsesAndPrintsIpv4AndIpv6) {
  struct Case {
    const char* text;
    int family;
    std::uint16_t port;
    SocketAddress same;
  };
  for (const Case& c : {Case{"127.0.0.1:8080", AF_INET, 8080, SocketAddress::loopback_v4(8080)},
                        Case{"[::1]:9", AF_INET6, 9, SocketAddress::loopback_v6(9)}}) {
    SCOPED_TRACE(c.text);
    auto a = SocketAddress::parse(c.text);
    ASSERT_TRUE(a);
    EXPECT_EQ(a.value().family(), c.family);
    EXPECT_EQ(a.value().port(), c.port);
    EXPECT_EQ(a.value().to_string(), c.text);
    EXPECT_EQ(a.value(), c.same);
  }
}

TEST(SocketAddress, ParsesUnixPaths) {
  auto a = SocketAddress::parse("unix:/tmp/x.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().family(), AF_UNIX);
  EXPECT_EQ(a.value().to_string(), "unix:/tmp/x.sock");
  auto b = SocketAddress::parse("/tmp/x.sock");
  ASSERT_TRUE(b);
  EXPECT_EQ(a.value(), *b);
  EXPECT_FALSE(SocketAddress::unix_path(std::string(200, 'x')));
}

TEST(SocketAddress, RejectsMalformedText) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "1.2.3:80",
                          "localhost:80", "[::1]80", "[::1]:", "[zz]:1", "1.2.3.4:-1"}) {
    EXPECT_FALSE(SocketAddress::parse(bad)) << bad;
  }
  EXPECT_EQ(SocketAddress().family(), AF_UNSPEC);
  EXPECT_EQ(SocketAddress().to_string(), "");
}

TEST(Buffer, ConsumesAndReusesItsMemory) {
  Buffer b;
  b.append("hello world");
  EXPECT_EQ(b.view(), "hello world");
  b.consume(6);
  EXPECT_EQ(b.view(), "world");
  const std::size_t cap = b.capacity();
  b.consume(100);
  EXPECT_TRUE(b.empty());
  for (int i = 0; i < 1000; ++i) {
    b.append("0123456789");
    b.consume(10);
  }
  EXPECT_EQ(b.capacity(), cap);  // steady state: no growth
}

TEST(OutputQueue, GathersCoalescesAndConsumesInOrder) {
  OutputQueue q;
  q.append(std::string_view("abc"));
  q.append(std::string_view("def"));
  q.append(std::string(20000, 'x'));  // large: its own chunk, moved in
  q.append(std::string_view("tail"));
  EXPECT_EQ(q.size(), 6U + 20000U + 4U);
  iovec iov[8];
  const std::size_t n = q.gather(iov, 8);
  ASSERT_EQ(n, 3U);  // "abcdef" coalesced, the big one, "tail"
  EXPECT_EQ(std::string(static_cast<char*>(iov[0].iov_base), iov[0].iov_len), "abcdef");
  q.consume(4);
  ASSERT_EQ(q.gather(iov, 8), 3U);
  EXPECT_EQ(std::string(static_cast<char*>(iov[0].iov_base), iov[0].iov_len), "ef");
  q.consume(2 + 20000 + 1);
  ASSERT_EQ(q.gather(iov, 8), 1U);
  EXPECT_EQ(std::string(static_cast<char*>(iov[0].iov_base), iov[0].iov_len), "ail");
  q.consume(3);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.gather(iov, 8), 0U);
}

}  // namespace
}  // namespace reactor

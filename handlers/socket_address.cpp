// SocketAddress: numeric parsing and printing of IPv4, IPv6 and Unix-domain addresses.
#include "handlers/socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace reactor {
namespace {

// Parses a decimal port 0..65535; false on anything else (signs, spaces, overflow).
bool parse_port(std::string_view text, std::uint16_t& port) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace

SocketAddress::SocketAddress() noexcept {
  std::memset(&storage_, 0, sizeof storage_);
  storage_.ss_family = AF_UNSPEC;
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  if (text.starts_with("unix:")) return unix_path(text.substr(5));
  if (text.starts_with("/")) return unix_path(text);
  SocketAddress out;
  std::uint16_t port = 0;
  if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':' ||
        !parse_port(text.substr(close + 2), port)) {
      return errc::invalid_argument;
    }
    const std::string host(text.substr(1, close - 1));
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) return errc::invalid_argument;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    out.length_ = sizeof(sockaddr_in6);
    return out;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || !parse_port(text.substr(colon + 1), port)) {
    return errc::invalid_argument;
  }
  const std::string host(text.substr(0, colon));
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return errc::invalid_argument;
  a4->sin_family = AF_INET;
  a4->sin_port = htons(port);
  out.length_ = sizeof(sockaddr_in);
  return out;
}

SocketAddress SocketAddress::loopback_v4(std::uint16_t port) noexcept {
  SocketAddress out;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  a4->sin_family = AF_INET;
  a4->sin_port = htons(port);
  a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  out.length_ = sizeof(sockaddr_in);
  return out;
}

SocketAddress SocketAddress::loopback_v6(std::uint16_t port) noexcept {
  SocketAddress out;
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  a6->sin6_family = AF_INET6;
  a6->sin6_port = htons(port);
  a6->sin6_addr = in6addr_loopback;
  out.length_ = sizeof(sockaddr_in6);
  return out;
}

SocketAddress SocketAddress::any_v4(std::uint16_t port) noexcept {
  SocketAddress out = loopback_v4(port);
  reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_addr.s_addr = htonl(INADDR_ANY);
  return out;
}

Result<SocketAddress> SocketAddress::unix_path(std::string_view path) {
  SocketAddress out;
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage_);
  // The path must fit with its terminating NUL, which some kernels require.
  if (path.empty() || path.size() >= sizeof un->sun_path) return errc::invalid_argument;
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  out.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return out;
}

SocketAddress SocketAddress::from_native(const sockaddr* address, socklen_t length) noexcept {
  SocketAddress out;
  if (address == nullptr || length == 0) return out;
  out.length_ = std::min<socklen_t>(length, sizeof out.storage_);
  std::memcpy(&out.storage_, address, out.length_);
  return out;
}

Result<SocketAddress> SocketAddress::local_of(int fd) {
  SocketAddress out;
  socklen_t len = sizeof out.storage_;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage_), &len) != 0) {
    return last_system_error();
  }
  out.length_ = len;
  return out;
}

Result<SocketAddress> SocketAddress::peer_of(int fd) {
  SocketAddress out;
  socklen_t len = sizeof out.storage_;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&out.storage_), &len) != 0) {
    return last_system_error();
  }
  out.length_ = len;
  return out;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host,
                sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host,
                sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(port());
  }
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    const std::size_t max =
        length_ > offsetof(sockaddr_un, sun_path) ? length_ - offsetof(sockaddr_un, sun_path) : 0;
    return "unix:" + std::string(un->sun_path, ::strnlen(un->sun_path, max));
  }
  return {};
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

}  // namespace reactor

// SocketAddress: one IPv4, IPv6 or Unix-domain socket address, parsed from text and printed back.
// The acceptor, connector and datagram handler take these, so a service can listen on any family
// from one configuration string.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace reactor {

/// A socket address of family AF_INET, AF_INET6 or AF_UNIX (AF_UNSPEC when empty).
class SocketAddress {
 public:
  /// An empty address (family AF_UNSPEC).
  SocketAddress() noexcept;

  /// Parses "1.2.3.4:80", "[::1]:80", "unix:/path" or "/path" (a path means Unix-domain).
  /// Host names are not resolved: only numeric addresses, so parsing never blocks.
  static Result<SocketAddress> parse(std::string_view text);
  /// 127.0.0.1:`port`.
  static SocketAddress loopback_v4(std::uint16_t port) noexcept;
  /// The IPv6 loopback address, [::1]:`port`.
  static SocketAddress loopback_v6(std::uint16_t port) noexcept;
  /// 0.0.0.0:`port`.
  static SocketAddress any_v4(std::uint16_t port) noexcept;
  /// A Unix-domain address; errc::invalid_argument when `path` is empty or too long.
  static Result<SocketAddress> unix_path(std::string_view path);
  /// Copies a native address of `length` bytes (truncated to what fits).
  static SocketAddress from_native(const sockaddr* address, socklen_t length) noexcept;
  /// The address a socket is bound to (getsockname).
  static Result<SocketAddress> local_of(int fd);
  /// The address a socket is connected to (getpeername).
  static Result<SocketAddress> peer_of(int fd);

  /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
  [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
  /// The port of an IP address (host order); 0 for other families.
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// The native address, for bind / connect / sendto.
  [[nodiscard]] const sockaddr* native() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  /// Length of the native address in bytes.
  [[nodiscard]] socklen_t length() const noexcept { return length_; }
  /// "1.2.3.4:80", "[::1]:80", "unix:/path", or "" when empty.
  [[nodiscard]] std::string to_string() const;

  /// Same family and bytes.
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t length_ = 0;
};

}  // namespace reactor

// DatagramHandler: a UDP (or Unix-domain datagram) endpoint served by the reactor. Subclasses get
// each datagram with its sender in on_datagram() and answer with send_to().
#pragma once

#include <cstddef>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/unique_fd.hpp"
#include "handlers/socket_address.hpp"
#include "reactor/dispatcher.hpp"

namespace reactor {

/// Settings of a DatagramHandler.
struct DatagramOptions {
  /// Largest datagram received whole; longer ones are truncated (and reported as such).
  std::size_t max_datagram = 64 * 1024;
  /// Most datagrams read per readiness event, so one busy socket cannot starve the rest.
  std::size_t max_per_event = 64;
};

/// A bound datagram socket. Caller-owned: keep it alive while it is open.
class DatagramHandler : public EventHandler {
 public:
  /// Does not bind yet; call open().
  explicit DatagramHandler(Dispatcher& reactor, const DatagramOptions& options = {});
  /// Closes the socket (no hook called).
  ~DatagramHandler() override;

  /// Creates a datagram socket of `address`'s family, binds it and registers for reading.
  std::error_code open(const SocketAddress& address);
  /// Sends one datagram. Datagrams may be dropped: when the socket buffer is full this returns
  /// EAGAIN instead of queueing.
  std::error_code send_to(std::string_view bytes, const SocketAddress& to);
  /// Stops receiving and closes the socket.
  void close();
  /// The bound address (with the kernel-chosen port for port 0).
  [[nodiscard]] const SocketAddress& local_address() const noexcept { return local_; }
  /// The socket.
  [[nodiscard]] Handle get_handle() const override { return socket_.get(); }
  /// The reactor.
  [[nodiscard]] Dispatcher& reactor() const noexcept { return reactor_; }

 protected:
  /// One datagram from `from`; `truncated` when it was longer than max_datagram.
  virtual void on_datagram(std::string_view bytes, const SocketAddress& from, bool truncated) = 0;
  /// A receive error other than "nothing more" (e.g. ECONNREFUSED from an ICMP error). Ignored
  /// by default: one bad peer must not stop the endpoint.
  virtual void on_error(std::error_code error) { (void)error; }

  int handle_input(Handle handle) override;
  int handle_close(Handle handle, EventMask removed) override;

 private:
  Dispatcher& reactor_;
  DatagramOptions options_;
  UniqueFd socket_;
  SocketAddress local_;
  std::vector<char> buffer_;
  bool registered_ = false;
};

}  // namespace reactor

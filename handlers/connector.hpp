// Connector: actively opens connections. A non-blocking connect is completed through the reactor
// with a timeout, and the outcome goes to the service handler: on_open() when connected, or
// on_close(error) with the exact error (ECONNREFUSED, ENOENT, timed_out, ...) when not.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <system_error>
#include <vector>

#include "base/unique_fd.hpp"
#include "handlers/socket_address.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/dispatcher.hpp"

namespace reactor {

/// Starts connections for StreamHandlers. Loop thread only.
class Connector {
 public:
  /// A connector serving `reactor`.
  explicit Connector(Dispatcher& reactor);
  /// Cancels pending connects: each handler gets on_close(operation_canceled) and is deleted.
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  /// Connects `handler` (which the framework owns from now on, as with StreamHandler::start) to
  /// `address`. The result always arrives later, from the loop: on_open() once connected, or
  /// on_close(error) followed by deletion. Returns an error (and deletes the handler without a
  /// call) only for a null handler or one that already has a socket. `timeout`: zero, negative
  /// or forever means no deadline (the kernel's own connect timeout still applies), and so, in
  /// practice, does any value past the end of the clock's range.
  std::error_code connect(std::unique_ptr<StreamHandler> handler, const SocketAddress& address,
                          Duration timeout = std::chrono::seconds(10));
  /// Connects not yet completed.
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }

 private:
  class Attempt;
  void done(Attempt* attempt, std::error_code result);
  static void deliver(std::unique_ptr<StreamHandler> handler, UniqueFd socket,
                      std::error_code result);

  Dispatcher& reactor_;
  std::vector<std::unique_ptr<Attempt>> pending_;
};

}  // namespace reactor

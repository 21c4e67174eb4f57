// Acceptor: listens on an IPv4, IPv6 or Unix-domain address and creates one service handler (a
// StreamHandler subclass) per accepted connection, handing it to the framework (see
// StreamHandler::start). It accepts in batches until EAGAIN, and survives descriptor exhaustion
// (EMFILE / ENFILE) by pausing on a timer instead of spinning on a listening socket that stays
// readable.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <type_traits>
#include <utility>

#include "base/unique_fd.hpp"
#include "handlers/socket_address.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/dispatcher.hpp"

namespace reactor {

/// Settings of an Acceptor.
struct AcceptorOptions {
  /// listen() backlog.
  int backlog = SOMAXCONN;
  /// SO_REUSEPORT, so several processes or reactors can share one port.
  bool reuse_port = false;
  /// Most connections accepted per readiness event, so a flood cannot starve the others.
  std::size_t max_accepts_per_event = 128;
  /// First pause after EMFILE / ENFILE / ENOBUFS / ENOMEM; doubles (saturating) while it
  /// persists. Zero or negative: pause for one turn of the loop only. A pause past the end of the
  /// clock's range (forever) never ends: the acceptor stops accepting after its first shortage.
  Duration backoff_initial = std::chrono::milliseconds(10);
  /// Longest pause.
  Duration backoff_max = std::chrono::milliseconds(500);
  /// TCP_NODELAY on accepted TCP sockets: replies must not wait for Nagle and delayed ACKs.
  bool tcp_nodelay = true;
  /// Unix-domain: remove a stale socket file before bind and the file again at close.
  bool unlink_unix_path = true;
  /// Most connections alive at once; zero: no limit. At the limit the listener is not watched
  /// (new clients wait in the kernel's backlog) until one of this acceptor's connections closes.
  std::size_t max_connections = 0;
};

/// The non-template part of Acceptor: the listening socket, the accept loop and back-off.
class AcceptorBase : public EventHandler {
 public:
  /// Does not listen yet; call open().
  explicit AcceptorBase(Dispatcher& reactor, const AcceptorOptions& options = {});
  /// Stops listening (no hook is called). Connections already accepted live on.
  ~AcceptorBase() override;

  /// Creates the socket (SO_REUSEADDR, optional SO_REUSEPORT), binds, listens and registers.
  std::error_code open(const SocketAddress& address);
  /// Stops listening; accepted connections are not affected.
  void close();
  /// The bound address (with the port the kernel picked when asked for port 0).
  [[nodiscard]] const SocketAddress& local_address() const noexcept { return local_; }
  /// The listening socket.
  [[nodiscard]] Handle get_handle() const override { return listener_.get(); }
  /// The reactor.
  [[nodiscard]] Dispatcher& reactor() const noexcept { return reactor_; }

  /// Connections accepted so far.
  [[nodiscard]] std::size_t accepted() const noexcept { return accepted_; }
  /// Times accepting was paused for lack of descriptors or memory.
  [[nodiscard]] std::size_t backoffs() const noexcept { return backoffs_; }
  /// True while accepting is paused.
  [[nodiscard]] bool backing_off() const noexcept { return backing_off_; }
  /// Connections made by this acceptor whose handlers still exist.
  [[nodiscard]] std::size_t connections() const noexcept { return slots_->live.load(); }
  /// True while accepting is paused at max_connections.
  [[nodiscard]] bool at_limit() const noexcept { return slots_->at_limit.load(); }

 protected:
  /// Makes the service handler for a new connection; nullptr refuses it (the socket closes).
  virtual std::unique_ptr<StreamHandler> make_handler(UniqueFd socket,
                                                      const SocketAddress& peer) = 0;

  int handle_input(Handle handle) override;
  /// Reached through notify() when a connection ends while accepting is paused at the limit.
  int handle_output(Handle handle) override;
  int handle_timeout(TimePoint now, const void* arg) override;
  int handle_close(Handle handle, EventMask removed) override;

 private:
  // Shared with a token each accepted handler holds: counts the live connections and lets a full
  // acceptor accept again when one goes. Outlives the acceptor when connections do. A connection
  // may end on another thread (ThreadPoolReactor), so the count is atomic and a full acceptor
  // hears of it through notify(), in its own hook, never by a direct call.
  struct Slots {
    std::atomic<std::size_t> live{0};
    std::atomic<bool> at_limit{false};  // the acceptor paused at max_connections
    std::mutex owner_mutex;
    AcceptorBase* owner = nullptr;  // null once the acceptor is destroyed (owner_mutex)
  };

  void back_off();
  void connection_gone();

  Dispatcher& reactor_;
  AcceptorOptions options_;
  UniqueFd listener_;
  SocketAddress local_;
  Duration backoff_ = Duration::zero();
  std::size_t accepted_ = 0;
  std::size_t backoffs_ = 0;
  bool backing_off_ = false;
  bool registered_ = false;
  std::shared_ptr<Slots> slots_;
};

/// Accepts connections and serves each with a new `Service` (derived from StreamHandler).
/// The framework owns every Service it creates and deletes it after its on_close().
template <class Service>
class Acceptor final : public AcceptorBase {
  static_assert(std::is_base_of_v<StreamHandler, Service>,
                "Acceptor<Service>: Service must derive from StreamHandler");

 public:
  /// Makes a Service for an accepted socket (nullptr refuses the connection).
  using Factory =
      std::function<std::unique_ptr<Service>(Dispatcher&, UniqueFd, const SocketAddress&)>;

  /// Creates each Service as Service(reactor, std::move(socket)).
  explicit Acceptor(Dispatcher& reactor, const AcceptorOptions& options = {})
      : AcceptorBase(reactor, options) {
    static_assert(
        std::is_constructible_v<Service, Dispatcher&, UniqueFd>,
        "Acceptor<Service>(reactor): Service needs a (Dispatcher&, UniqueFd) constructor; "
        "otherwise pass a factory");
    factory_ = [](Dispatcher& r, UniqueFd fd, const SocketAddress&) {
      return std::make_unique<Service>(r, std::move(fd));
    };
  }
  /// Creates each Service with `factory` (to pass shared state such as a chat room).
  Acceptor(Dispatcher& reactor, Factory factory, const AcceptorOptions& options = {})
      : AcceptorBase(reactor, options), factory_(std::move(factory)) {}

 protected:
  std::unique_ptr<StreamHandler> make_handler(UniqueFd socket, const SocketAddress& peer) override {
    if (!factory_) return nullptr;
    return factory_(reactor(), std::move(socket), peer);
  }

 private:
  Factory factory_;
};

}  // namespace reactor

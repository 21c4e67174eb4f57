// Connector: one Attempt per connect in progress, watching the socket for the connect event and
// a timer for the deadline; whichever comes first settles it.
#include "handlers/connector.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace reactor {
namespace {
constexpr char deadline_tag = 'd';
constexpr char report_tag = 'r';  // connect() failed at once; report it from the loop
}  // namespace

/// A connect in progress. Owned by the Connector's pending list.
class Connector::Attempt final : public EventHandler {
 public:
  Attempt(Connector& owner, std::unique_ptr<StreamHandler> handler)
      : owner_(owner), handler_(std::move(handler)) {}

  [[nodiscard]] Handle get_handle() const override { return socket_.get(); }

  // Writable: the connect finished, one way or the other; SO_ERROR says which.
  int handle_output(Handle /*handle*/) override {
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    owner_.done(this,
                error == 0 ? std::error_code{} : std::error_code(error, std::system_category()));
    return 0;  // this Attempt is gone now
  }

  int handle_timeout(TimePoint /*now*/, const void* arg) override {
    owner_.done(this, arg == &deadline_tag ? std::make_error_code(std::errc::timed_out) : early_);
    return -1;
  }

  UniqueFd socket_;
  Connector& owner_;
  std::unique_ptr<StreamHandler> handler_;
  std::error_code early_;
};

Connector::Connector(Dispatcher& reactor) : reactor_(reactor) {}

Connector::~Connector() {
  auto pending = std::move(pending_);
  for (auto& a : pending) {
    auto handler = std::move(a->handler_);
    a.reset();  // withdraws its registration and timers before the handler hears anything
    deliver(std::move(handler), UniqueFd(), std::make_error_code(std::errc::operation_canceled));
  }
}

std::error_code Connector::connect(std::unique_ptr<StreamHandler> handler,
                                   const SocketAddress& address, Duration timeout) {
  if (!handler || handler->get_handle() != invalid_handle) return errc::invalid_argument;
  auto attempt = std::make_unique<Attempt>(*this, std::move(handler));
  Attempt& a = *attempt;
  pending_.push_back(std::move(attempt));

  std::error_code early;
  a.socket_.reset(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!a.socket_.valid()) {
    early = last_system_error();
  } else {
    if (address.family() != AF_UNIX) {
      // Request/response traffic must not wait for Nagle's algorithm and delayed ACKs.
      const int one = 1;
      (void)::setsockopt(a.socket_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int rc = 0;
    do {
      rc = ::connect(a.socket_.get(), address.native(), address.length());
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN) {
      early = last_system_error();
    } else if (auto ec = reactor_.register_handler(&a, EventMask::connect)) {
      early = ec;
    }
  }
  if (early) {
    // Reported from the loop like every other outcome, so the caller never sees a hook run
    // inside connect().
    a.early_ = early;
    if (auto id = reactor_.schedule_timer(&a, &report_tag, Duration::zero()); !id) {
      pending_.pop_back();  // cannot even report it: drop the attempt and its handler
      return id.error();
    }
    return {};
  }
  if (timeout > Duration::zero() && timeout != forever) {
    (void)reactor_.schedule_timer(&a, &deadline_tag, timeout);
  }
  return {};
}

void Connector::done(Attempt* attempt, std::error_code result) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return p.get() == attempt; });
  if (it == pending_.end()) return;
  std::unique_ptr<Attempt> owned = std::move(*it);
  pending_.erase(it);
  auto handler = std::move(owned->handler_);
  UniqueFd socket = result ? UniqueFd() : std::move(owned->socket_);
  // Destroying the Attempt withdraws its registration and timers (it is in one of its own
  // hooks, which the reactor allows) and, on failure, closes the socket.
  owned.reset();
  deliver(std::move(handler), std::move(socket), result);
}

void Connector::deliver(std::unique_ptr<StreamHandler> handler, UniqueFd socket,
                        std::error_code result) {
  if (!result) {
    handler->adopt_socket(std::move(socket));
    result = handler->register_now();
    if (!result) {
      StreamHandler* h = handler.release();
      h->owned_ = true;
      ++h->depth_;
      h->on_open();
      h->leave();  // may delete h
      return;
    }
  }
  handler.release()->fail_before_open(result);  // calls on_close(result), then deletes
}

}  // namespace reactor

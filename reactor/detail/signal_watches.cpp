// SignalWatches: see the header.
#include "reactor/detail/signal_watches.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/error.hpp"
#include "reactor/detail/signal_router.hpp"

namespace reactor {

SignalWatches::~SignalWatches() {
  // A signal is routed to the pipe once however many handlers watch it: unsubscribe it once.
  std::vector<int> routed;
  for (const Watch& w : watches_) {
    if (std::find(routed.begin(), routed.end(), w.signum) != routed.end()) continue;
    routed.push_back(w.signum);
    signal_router::unsubscribe(w.signum, write_.get());
  }
}

std::error_code SignalWatches::open_pipe(bool& created) {
  created = false;
  if (read_) return {};
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return last_system_error();
  read_.reset(fds[0]);
  write_.reset(fds[1]);
  created = true;
  return {};
}

void SignalWatches::close_pipe() noexcept {
  read_.reset();
  write_.reset();
}

std::error_code SignalWatches::add(int signum, EventHandler* handler) {
  if (contains(signum, handler)) return errc::already_registered;
  const bool first = std::none_of(watches_.begin(), watches_.end(),
                                  [&](const Watch& w) { return w.signum == signum; });
  if (first) {
    if (auto ec = signal_router::subscribe(signum, write_.get())) return ec;
  }
  watches_.push_back({signum, handler});
  return {};
}

bool SignalWatches::remove(int signum, EventHandler* handler) noexcept {
  auto it = std::find_if(watches_.begin(), watches_.end(), [&](const Watch& w) {
    return w.signum == signum && w.handler == handler;
  });
  if (it == watches_.end()) return false;
  watches_.erase(it);
  const bool last = std::none_of(watches_.begin(), watches_.end(),
                                 [&](const Watch& w) { return w.signum == signum; });
  if (last) signal_router::unsubscribe(signum, write_.get());
  return true;
}

bool SignalWatches::contains(int signum, const EventHandler* handler) const noexcept {
  return std::any_of(watches_.begin(), watches_.end(),
                     [&](const Watch& w) { return w.signum == signum && w.handler == handler; });
}

std::vector<int> SignalWatches::signals_of(const EventHandler* handler) const {
  std::vector<int> out;
  for (const Watch& w : watches_) {
    if (w.handler == handler) out.push_back(w.signum);
  }
  return out;
}

void SignalWatches::drain(Arrivals& arrived) noexcept {
  arrived.fill(false);
  unsigned char buffer[256];
  ssize_t n = 0;
  while ((n = ::read(read_.get(), buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)) {
    for (ssize_t i = 0; i < n; ++i) arrived[buffer[i]] = true;
  }
}

}  // namespace reactor

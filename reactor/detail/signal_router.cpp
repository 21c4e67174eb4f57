// Self-pipe signal routing.
//
// The OS handler and the (un)subscribe calls share a table guarded by a spin lock made of a
// lock-free atomic_flag, the one kind of lock that is safe inside a signal handler. A thread
// changing the table blocks all signals first, so the handler can never interrupt the lock
// holder on its own thread and spin forever; on another thread it just waits a few instructions.
#include "reactor/detail/signal_router.hpp"

#include <signal.h>  // NOLINT(modernize-deprecated-headers): sigaction, sigset_t are POSIX
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <mutex>

#include "base/error.hpp"

namespace reactor::signal_router {
namespace {

constexpr int max_signal = 65;           // NSIG on Linux
constexpr std::size_t max_routes = 256;  // (signal, reactor) pairs at once

struct Route {
  int signum = 0;
  int fd = -1;
};

std::atomic_flag table_lock = ATOMIC_FLAG_INIT;
std::array<Route, max_routes> routes;
std::array<int, max_signal> subscribers{};
std::array<struct sigaction, max_signal> previous{};
std::mutex change_mutex;  // serialises subscribe/unsubscribe between threads

extern "C" void route_signal(int signum) {
  const int saved_errno = errno;
  while (table_lock.test_and_set(std::memory_order_acquire)) {
  }
  const auto byte = static_cast<unsigned char>(signum);
  for (const Route& r : routes) {
    // A full pipe already holds a wake-up for this reactor; dropping the byte loses nothing
    // that POSIX would not coalesce anyway.
    if (r.signum == signum) [[maybe_unused]]
      auto n = ::write(r.fd, &byte, 1);
  }
  table_lock.clear(std::memory_order_release);
  errno = saved_errno;
}

// Holds every signal blocked on this thread and the table lock, for the scope's lifetime.
class TableGuard {
 public:
  TableGuard() : change_(change_mutex) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
    while (table_lock.test_and_set(std::memory_order_acquire)) {
    }
  }
  ~TableGuard() {
    table_lock.clear(std::memory_order_release);
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  TableGuard(const TableGuard&) = delete;
  TableGuard& operator=(const TableGuard&) = delete;

 private:
  std::lock_guard<std::mutex> change_;
  sigset_t saved_{};
};

}  // namespace

std::error_code subscribe(int signum, int pipe_write_fd) {
  if (signum <= 0 || signum >= max_signal || signum == SIGKILL || signum == SIGSTOP) {
    return errc::invalid_argument;
  }
  TableGuard guard;
  Route* free_route = nullptr;
  for (Route& r : routes) {
    if (r.signum == 0) {
      free_route = &r;
      break;
    }
  }
  if (free_route == nullptr) return std::make_error_code(std::errc::too_many_files_open);
  if (subscribers[signum] == 0) {
    struct sigaction action {};
    action.sa_handler = route_signal;
    sigfillset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (::sigaction(signum, &action, &previous[signum]) != 0) return last_system_error();
  }
  ++subscribers[signum];
  *free_route = {signum, pipe_write_fd};
  return {};
}

void unsubscribe(int signum, int pipe_write_fd) noexcept {
  if (signum <= 0 || signum >= max_signal) return;
  TableGuard guard;
  for (Route& r : routes) {
    if (r.signum == signum && r.fd == pipe_write_fd) {
      r = Route{};
      if (--subscribers[signum] == 0) ::sigaction(signum, &previous[signum], nullptr);
      return;
    }
  }
}

}  // namespace reactor::signal_router

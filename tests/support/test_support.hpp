// Helpers shared by the test suites: descriptor pairs, bounded event-loop driving and waiting on
// other threads, and the list of backends the conformance suite runs on.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "reactor/reactor.hpp"
#include "reactor/thread_pool_reactor.hpp"

namespace reactor::test {

using std::chrono::milliseconds;  // the unit every test here states its times in

/// A connected AF_UNIX stream socket pair, both ends non-blocking.
struct SocketPair {
  UniqueFd a;
  UniqueFd b;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
      a.reset(fds[0]);
      b.reset(fds[1]);
    }
  }
};

/// A non-blocking pipe: read end `r`, write end `w`.
struct Pipe {
  UniqueFd r;
  UniqueFd w;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
      r.reset(fds[0]);
      w.reset(fds[1]);
    }
  }
};

/// Writes `text` to `fd`; true when all of it went out.
inline bool put(int fd, const std::string& text) {
  return ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

/// Reads what is available on `fd` (non-blocking).
inline std::string take(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

/// A count other threads add to; the test's thread waits for a value (bounded) instead of
/// sleeping.
class Tally {
 public:
  /// `bound`: how long wait_for(n) waits.
  explicit Tally(std::chrono::milliseconds bound = std::chrono::seconds(10)) : bound_(bound) {}
  void add(int n = 1) {
    std::lock_guard lock(mutex_);
    count_ += n;
    cv_.notify_all();
  }
  /// True once the count is at least `n`; false when `limit` (else the bound) passed first.
  bool wait_for(int n) { return wait_for(n, bound_); }
  bool wait_for(int n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return count_ >= n; });
  }
  int value() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::chrono::milliseconds bound_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

/// Runs the reactor until `done()` holds or `limit` passes; true when `done()` held.
/// This is a bounded wait on a condition, not a sleep standing in for synchronisation.
inline bool run_until(Dispatcher& r, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    auto n = r.handle_events(std::chrono::milliseconds(10));
    if (!n) return false;
  }
  return true;
}

/// One backend the conformance suite runs on.
struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<Demultiplexer>()> make;
  /// Run on a ThreadPoolReactor instead of a Reactor (conformance_targets()).
  bool thread_pool = false;

  /// A fresh dispatcher of the kind this parameter names, on its backend.
  [[nodiscard]] std::unique_ptr<Dispatcher> make_dispatcher() const {
    if (thread_pool) {
      ThreadPoolReactorOptions options;
      options.threads = 2;
      return std::make_unique<ThreadPoolReactor>(make(), options);
    }
    return std::make_unique<Reactor>(make());
  }
};

/// Every backend available in this build (and test-only ones, such as emulated kqueue).
std::vector<BackendParam> conformance_backends();

/// conformance_backends() on a Reactor, then each of them that a ThreadPoolReactor accepts
/// (all but io_uring, whose ring serves one thread) on a ThreadPoolReactor, named "pool_<backend>".
inline std::vector<BackendParam> conformance_targets() {
  std::vector<BackendParam> out = conformance_backends();
  const std::size_t n = out.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (out[i].name == "io_uring") continue;
    BackendParam pool = out[i];
    pool.name = "pool_" + pool.name;
    pool.thread_pool = true;
    out.push_back(std::move(pool));
  }
  return out;
}

/// Prints a backend parameter by name in test output.
inline void PrintTo(const BackendParam& param, std::ostream* os) { *os << param.name; }

/// For INSTANTIATE_TEST_SUITE_P: names each instance after its backend.
inline constexpr auto backend_param_name = [](const auto& info) { return info.param.name; };

}  // namespace reactor::test

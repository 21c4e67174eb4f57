// ReactorPool: one single-threaded Reactor per thread (reactor-per-core), so a server can use
// every core without any handler ever being shared between threads. Connections are spread
// either by one SO_REUSEPORT acceptor per reactor (the kernel balances) or by one acceptor that
// hands each accepted socket to the next reactor round-robin (hand_off(), in
// handlers/hand_off.hpp).
//
// Threads: at(), size(), next(), post_to(), end_event_loop() and running() may be called from any
// thread. A handler belongs to the reactor it is registered with and must only be touched on that
// reactor's thread (use post_to() to get there).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "base/unique_fd.hpp"
#include "reactor/reactor.hpp"

namespace reactor {

/// N Reactors, each run by its own thread.
class ReactorPool {
 public:
  /// Creates `size` reactors (at least one) with `options`. Throws std::system_error like
  /// Reactor's constructor.
  explicit ReactorPool(std::size_t size, const ReactorOptions& options = {});
  /// Creates `size` reactors blocking in backends made by `make_demux` (tests use this to run on
  /// every backend).
  ReactorPool(std::size_t size, const std::function<std::unique_ptr<Demultiplexer>()>& make_demux,
              const ReactorOptions& options = {});
  /// Stops every loop and joins the threads, then destroys the reactors (last to first).
  ~ReactorPool();
  ReactorPool(const ReactorPool&) = delete;
  ReactorPool& operator=(const ReactorPool&) = delete;

  /// Number of reactors.
  [[nodiscard]] std::size_t size() const noexcept { return reactors_.size(); }
  /// Reactor `i` (i < size()).
  [[nodiscard]] Reactor& at(std::size_t i) noexcept { return *reactors_[i]; }
  /// The next reactor in round-robin order; any thread.
  Reactor& next() noexcept;
  /// Index the next call to next() would return, advanced (round-robin); any thread.
  std::size_t next_index() noexcept;

  /// Any thread: runs `work` on reactor `i`'s thread. errc::invalid_argument for a bad index.
  std::error_code post_to(std::size_t i, std::function<void()> work);

  /// Starts one thread per reactor and returns. errc::already_registered when running.
  std::error_code start();
  /// Runs reactors 1..N-1 on new threads and reactor 0 on the calling thread until
  /// end_event_loop(); then joins the others. Returns reactor 0's loop error, if any.
  std::error_code run();
  /// Waits for the threads started by start() to finish (after end_event_loop()).
  void join();
  /// Any thread, also from a hook, also before start(): makes every reactor's loop return
  /// promptly.
  void end_event_loop() noexcept;
  /// True between start()/run() and the end of join().
  [[nodiscard]] bool running() const noexcept { return running_.load(std::memory_order_acquire); }
  /// The first loop error any reactor returned (empty if none); read it after join() or run().
  [[nodiscard]] std::error_code first_error() const;

 private:
  void loop(std::size_t i);

  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::vector<std::error_code> errors_;  // one per reactor, written by its own thread
};

}  // namespace reactor

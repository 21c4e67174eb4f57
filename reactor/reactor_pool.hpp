// ReactorPool: one single-threaded Reactor per thread (reactor-per-core), so a server can use
// every core without any handler ever being shared between threads. Connections are spread
// either by one SO_REUSEPORT acceptor per reactor (the kernel balances) or by one acceptor that
// hands each accepted socket to the next reactor round-robin (hand_off()).
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

#include "handlers/acceptor.hpp"
#include "handlers/socket_address.hpp"
#include "handlers/stream_handler.hpp"
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

  /// An Acceptor<Service> factory that hands every accepted socket to the next reactor of the
  /// pool, where `make` builds the Service and StreamHandler::start() takes it over. Use it with
  /// an acceptor registered on any reactor of the pool. The acceptor's max_connections does not
  /// count handed-off connections (they belong to other reactors).
  template <class Service>
  typename Acceptor<Service>::Factory hand_off(
      std::function<std::unique_ptr<Service>(Reactor&, UniqueFd, const SocketAddress&)> make) {
    return [this, make = std::move(make)](Dispatcher&, UniqueFd socket,
                                          const SocketAddress& peer) -> std::unique_ptr<Service> {
      const std::size_t i = next_index();
      Reactor& target = at(i);
      // std::function needs a copyable callable; the descriptor travels in a shared holder.
      auto fd = std::make_shared<UniqueFd>(std::move(socket));
      (void)post_to(i, [&target, make, fd, peer] {
        if (auto service = make(target, std::move(*fd), peer)) {
          (void)StreamHandler::start(std::move(service));  // failure deletes it
        }
      });
      return nullptr;  // the acceptor keeps nothing: the socket now belongs to `target`
    };
  }

  /// hand_off() with each Service built as Service(reactor, std::move(socket)).
  template <class Service>
  typename Acceptor<Service>::Factory hand_off() {
    return hand_off<Service>([](Reactor& r, UniqueFd fd, const SocketAddress&) {
      return std::make_unique<Service>(r, std::move(fd));
    });
  }

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

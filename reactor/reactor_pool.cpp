// ReactorPool: N reactors, one thread each. The pool adds no locking to the reactors: each is
// only driven by its own thread, and the pool talks to them through post() and end_event_loop(),
// the two members a Reactor accepts from any thread.
#include "reactor/reactor_pool.hpp"

#include <algorithm>

namespace reactor {

ReactorPool::ReactorPool(std::size_t size, const ReactorOptions& options)
    : ReactorPool(size, nullptr, options) {}

ReactorPool::ReactorPool(std::size_t size,
                         const std::function<std::unique_ptr<Demultiplexer>()>& make_demux,
                         const ReactorOptions& options) {
  size = std::max<std::size_t>(size, 1);
  reactors_.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    reactors_.push_back(make_demux ? std::make_unique<Reactor>(make_demux(), options)
                                   : std::make_unique<Reactor>(options));
  }
  errors_.resize(size);
}

ReactorPool::~ReactorPool() {
  end_event_loop();
  join();
  // Handlers of a reactor live on that reactor only, so the order is free; last to first
  // mirrors construction.
  while (!reactors_.empty()) reactors_.pop_back();
}

std::size_t ReactorPool::next_index() noexcept {
  return next_.fetch_add(1, std::memory_order_relaxed) % reactors_.size();
}

Reactor& ReactorPool::next() noexcept { return *reactors_[next_index()]; }

std::error_code ReactorPool::post_to(std::size_t i, std::function<void()> work) {
  if (i >= reactors_.size()) return errc::invalid_argument;
  return reactors_[i]->post(std::move(work));
}

void ReactorPool::loop(std::size_t i) {
  // run_event_loop also returns for an end_event_loop aimed at this reactor alone (a caller
  // using at(i).end_event_loop()); only the pool's stop ends the thread.
  while (!stopping_.load(std::memory_order_acquire)) {
    if (auto ec = reactors_[i]->run_event_loop()) {
      errors_[i] = ec;
      break;
    }
  }
}

std::error_code ReactorPool::start() {
  if (running_.exchange(true, std::memory_order_acq_rel)) return errc::already_registered;
  for (std::size_t i = 0; i < reactors_.size(); ++i) threads_.emplace_back([this, i] { loop(i); });
  return {};
}

std::error_code ReactorPool::run() {
  if (running_.exchange(true, std::memory_order_acq_rel)) return errc::already_registered;
  for (std::size_t i = 1; i < reactors_.size(); ++i) threads_.emplace_back([this, i] { loop(i); });
  loop(0);
  join();
  return errors_[0];
}

void ReactorPool::join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // A reactor whose thread saw the pool's stop before entering its loop still holds that
  // reactor's stop request; it belonged to this run, so consume it (run_event_loop returns at
  // once and clears it) rather than end the reactor's next loop, on whatever thread, early.
  for (auto& r : reactors_) {
    if (r->event_loop_done()) (void)r->run_event_loop();
  }
  // A stop requested before start() holds for that run; once joined, the pool may run again.
  stopping_.store(false, std::memory_order_release);
  running_.store(false, std::memory_order_release);
}

void ReactorPool::end_event_loop() noexcept {
  stopping_.store(true, std::memory_order_release);
  for (auto& r : reactors_) r->end_event_loop();
}

std::error_code ReactorPool::first_error() const {
  for (const std::error_code& ec : errors_) {
    if (ec) return ec;
  }
  return {};
}

}  // namespace reactor

// Helpers of the future-layer tests: a fixture that owns a Reactor and an Executor on each
// backend, a demultiplexer wrapper that counts kernel interest changes, and a hand-driven leaf
// future for waker tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <utility>

#include "reactor/futures/executor.hpp"
#include "reactor/futures/future.hpp"
#include "reactor/futures/io_futures.hpp"
#include "reactor/futures/task.hpp"
#include "reactor/futures/when.hpp"
#include "test_support.hpp"

namespace reactor::test {

using namespace std::chrono_literals;

/// Forwards to a real backend and counts add / modify / remove (the epoll_ctl of epoll).
class CountingDemux final : public Demultiplexer {
 public:
  explicit CountingDemux(std::unique_ptr<Demultiplexer> inner) : inner_(std::move(inner)) {}
  std::error_code add(int fd, EventMask interest) override {
    ++changes;
    return inner_->add(fd, interest);
  }
  std::error_code modify(int fd, EventMask interest) override {
    ++changes;
    return inner_->modify(fd, interest);
  }
  std::error_code remove(int fd) override {
    ++changes;
    return inner_->remove(fd);
  }
  std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                       std::size_t& count) override {
    ++waits;
    return inner_->wait(ready, timeout, count);
  }
  [[nodiscard]] Backend kind() const noexcept override { return inner_->kind(); }

  std::size_t changes = 0;
  std::size_t waits = 0;

 private:
  std::unique_ptr<Demultiplexer> inner_;
};

/// A Reactor (on the parameter's backend, behind a CountingDemux) and an Executor.
class FuturesTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    auto demux = std::make_unique<CountingDemux>(GetParam().make());
    demux_ = demux.get();
    reactor_ = std::make_unique<Reactor>(std::move(demux));
    executor_ = std::make_unique<Executor>(*reactor_);
  }
  void TearDown() override {
    executor_.reset();
    reactor_.reset();
  }

  Reactor& r() { return *reactor_; }
  Executor& ex() { return *executor_; }
  CountingDemux& demux() { return *demux_; }

  /// block_on with a time limit, so a bug fails the test instead of hanging it.
  template <Pollable F>
  auto run(F&& future, Duration limit = 10s) {
    return ex().block_on(timeout(r(), std::forward<F>(future), limit));
  }

 private:
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<Executor> executor_;
  CountingDemux* demux_ = nullptr;
};

/// A leaf driven by hand: pending until `ready` is set; keeps the last waker; counts polls.
struct Manual {
  struct State {
    std::atomic<bool> ready{false};
    std::atomic<int> polls{0};
    int value = 0;
    Waker waker;
    bool wake_in_poll = false;  // wake itself before returning pending (once)
  };
  using value_type = int;
  std::shared_ptr<State> state = std::make_shared<State>();

  Poll<int> poll(const Waker& w) {
    state->polls.fetch_add(1);
    if (state->ready.load(std::memory_order_acquire)) return state->value;
    state->waker = w;
    if (std::exchange(state->wake_in_poll, false)) w.wake();
    return std::nullopt;
  }
};

}  // namespace reactor::test

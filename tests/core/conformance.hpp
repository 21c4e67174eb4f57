// The conformance suite's fixture and probe handler. Every test in
// tests/core/*_conformance_test.cpp runs once per target in conformance_targets(), so each
// promise of docs/design.md is checked on select, poll, epoll and every other backend this build
// has, on the single-threaded Reactor and on the ThreadPoolReactor.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "test_support.hpp"

namespace reactor::test {

/// A handler whose hooks count calls and run optional test code. Records any hook that runs
/// after the final handle_close of its registration (promise 1).
class Probe : public EventHandler {
 public:
  explicit Probe(Handle handle = invalid_handle) : handle_(handle) {}
  Handle get_handle() const override { return handle_; }

  int handle_input(Handle h) override { return io(h, inputs, on_input); }
  int handle_output(Handle h) override { return io(h, outputs, on_output); }
  int handle_exception(Handle h) override { return io(h, exceptions, on_exception); }
  int handle_timeout(TimePoint now, const void* arg) override {
    ++timeouts;
    last_arg = arg;
    return on_timeout ? on_timeout(now, arg) : 0;
  }
  int handle_signal(int signum) override {
    ++signals;
    last_signal = signum;
    return on_signal ? on_signal(signum) : 0;
  }
  int handle_close(Handle h, EventMask removed) override {
    ++closes;
    closed_mask |= removed;
    if (on_close) on_close(h, removed);
    return 0;
  }

  /// Marks the registration as finished: any I/O hook after this is a violation.
  void mark_final() { final_ = true; }

  std::function<int(Handle)> on_input;
  std::function<int(Handle)> on_output;
  std::function<int(Handle)> on_exception;
  std::function<int(TimePoint, const void*)> on_timeout;
  std::function<int(int)> on_signal;
  std::function<void(Handle, EventMask)> on_close;
  int inputs = 0;
  int outputs = 0;
  int exceptions = 0;
  int timeouts = 0;
  int signals = 0;
  int closes = 0;
  int after_final = 0;
  int last_signal = 0;
  const void* last_arg = nullptr;
  Handle last_handle = invalid_handle;
  EventMask closed_mask = EventMask::none;

 private:
  int io(Handle h, int& counter, const std::function<int(Handle)>& hook) {
    if (final_) ++after_final;
    ++counter;
    last_handle = h;
    return hook ? hook(h) : 0;
  }

  Handle handle_;
  bool final_ = false;
};

/// An on_input hook that reads what is there and keeps the registration.
inline int drain(Handle fd) {
  take(fd);
  return 0;
}

/// Fixture: a fresh dispatcher on the backend under test: a Reactor, or a ThreadPoolReactor
/// driven through the same interface (handle_events turns on the test's thread).
class Conformance : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override { reactor_ = GetParam().make_dispatcher(); }
  void TearDown() override { reactor_.reset(); }
  Dispatcher& r() { return *reactor_; }
  /// True when the backend under test is select (FD_SETSIZE limits apply).
  bool is_select() const { return reactor_->backend() == Backend::select; }
  /// True when the dispatcher under test is a ThreadPoolReactor.
  bool is_thread_pool() const { return GetParam().thread_pool; }

  std::unique_ptr<Dispatcher> reactor_;
};

}  // namespace reactor::test

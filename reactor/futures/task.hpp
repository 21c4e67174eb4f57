// Task<T>: a C++20 coroutine that is a future. Inside it, `co_await f` works for any Pollable f
// (leaf futures, Future<T>, JoinHandle<T>, other Tasks, when_all / when_any / timeout). A Task is
// lazy: its body starts at its first poll, and it stops half way at each co_await whose future is
// pending. Polling the Task polls that future first and resumes the body only once it is ready,
// so a spurious wake costs one poll of the leaf and never resumes the body early.
//
// Errors: co_await yields the value or throws (std::system_error for an error code, the original
// exception otherwise); an exception leaving the body fails the Task with it. `co_return
// Outcome<T>::failure(ec)` fails a non-void Task with an error code without throwing.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "reactor/futures/outcome.hpp"
#include "reactor/futures/waker.hpp"

namespace reactor {

template <class T>
class Task;

namespace detail {

/// What a suspended Task waits for: a future inside its frame, polled through a thunk.
struct TaskPromiseBase {
  const Waker* waker = nullptr;  // the waker of the current poll
  void* awaiting = nullptr;      // the PollAwaiter the body is suspended on
  bool (*poll_awaiting)(void*, const Waker&) = nullptr;

  std::suspend_always initial_suspend() noexcept { return {}; }
  std::suspend_always final_suspend() noexcept { return {}; }

  /// Makes any Pollable awaitable; nothing else is (so every suspension has a waker behind it).
  template <Pollable F>
  auto await_transform(F&& future);
};

/// co_await on a Pollable: polls at once, and again from Task::poll while suspended.
template <class F>
struct PollAwaiter {
  using V = future_value_t<F>;

  F future;  // a reference for lvalues, the object itself (moved in) for rvalues
  TaskPromiseBase* promise;
  Poll<V> out{};

  bool await_ready() {
    out = future.poll(*promise->waker);
    return out.has_value();
  }
  void await_suspend(std::coroutine_handle<>) noexcept {
    promise->awaiting = this;
    promise->poll_awaiting = &poll_again;
  }
  decltype(auto) await_resume() { return std::move(*out).value(); }

  static bool poll_again(void* self, const Waker& waker) {
    auto* a = static_cast<PollAwaiter*>(self);
    try {
      a->out = a->future.poll(waker);
    } catch (...) {
      a->out = Outcome<V>::failure(std::current_exception());
    }
    return a->out.has_value();
  }
};

template <Pollable F>
auto TaskPromiseBase::await_transform(F&& future) {
  return PollAwaiter<F>{std::forward<F>(future), this};
}

template <class T>
struct TaskPromise : TaskPromiseBase {
  std::optional<Outcome<T>> result;

  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result = Outcome<T>::failure(std::current_exception()); }
  template <class U>
  void return_value(U&& value) {
    if constexpr (std::is_same_v<std::remove_cvref_t<U>, Outcome<T>>) {
      result = std::forward<U>(value);
    } else {
      result.emplace(T(std::forward<U>(value)));
    }
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
  std::optional<Outcome<void>> result;

  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept { result = Outcome<void>::failure(std::current_exception()); }
  void return_void() noexcept { result.emplace(); }
};

}  // namespace detail

/// A coroutine future producing T. Move-only; destroying it destroys the coroutine frame and so
/// every future it is suspended on (cancelling their registrations).
template <class T = void>
class [[nodiscard]] Task {
 public:
  /// The coroutine's promise type.
  using promise_type = detail::TaskPromise<T>;
  /// The value the body co_returns.
  using value_type = T;

  /// An empty task (polling it fails with async_errc::no_state).
  Task() noexcept = default;
  /// Takes over `other`'s coroutine, leaving it empty.
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  /// Destroys the coroutine held (cancelling what it awaits), then takes over `other`'s.
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  /// Resumes the body if what it awaits is ready; ready itself once the body has returned.
  Poll<T> poll(const Waker& waker) {
    if (!handle_ || handle_.done()) return Outcome<T>::failure(async_errc::no_state);
    promise_type& p = handle_.promise();
    if (p.poll_awaiting != nullptr) {
      if (!p.poll_awaiting(p.awaiting, waker)) return std::nullopt;  // spurious or early wake
      p.poll_awaiting = nullptr;
      p.awaiting = nullptr;
    }
    p.waker = &waker;
    handle_.resume();
    if (!handle_.done()) return std::nullopt;
    Poll<T> out = std::move(p.result);
    handle_.destroy();  // free the frame (and what it held) as soon as the value is out
    handle_ = nullptr;
    if (!out) return Outcome<T>::failure(async_errc::no_state);
    return out;
  }

 private:
  friend promise_type;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}

  std::coroutine_handle<promise_type> handle_;
};

template <class T>
Task<T> detail::TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> detail::TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

}  // namespace reactor

// Future<T> / Promise<T>: a one-shot channel for a result produced by callback code (a handler
// hook, a timer, posted work) and consumed by a task (co_await, block_on) or by a continuation
// (then). The first set_value / set_error / set_exception wins; a Promise destroyed without one
// fails the Future with async_errc::broken_promise.
//
// Threads: both ends belong to the reactor's loop thread. To complete a Promise from another
// thread, Reactor::post the completion.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "reactor/futures/outcome.hpp"
#include "reactor/futures/waker.hpp"

namespace reactor {

template <class T>
class Future;
template <class T>
class Promise;

namespace detail {

/// What a Promise and its Future share.
template <class T>
struct SharedState {
  std::optional<Outcome<T>> result;
  Waker waiter;                                    // the task awaiting the Future
  std::function<void(Outcome<T>&&)> continuation;  // set by then() instead of a waiter
  bool completed = false;
  bool future_alive = true;

  void complete(Outcome<T>&& outcome) {
    if (completed) return;
    completed = true;
    if (continuation) {
      auto next = std::move(continuation);
      continuation = nullptr;
      next(std::move(outcome));
      return;
    }
    result = std::move(outcome);
    if (waiter) waiter.wake_and_reset();
  }
};

// The type then(f) produces: f's return type, with f taking T (or nothing for void).
template <class T, class F>
struct ThenResult {
  using type = std::invoke_result_t<F, T>;
};
template <class F>
struct ThenResult<void, F> {
  using type = std::invoke_result_t<F>;
};

}  // namespace detail

/// The consuming end: a Pollable of T. Move-only.
template <class T>
class [[nodiscard]] Future {
 public:
  /// The value the Promise sets.
  using value_type = T;

  /// An empty future (polling it fails with async_errc::no_state).
  Future() noexcept = default;
  /// Takes over `other`'s shared state, leaving it empty.
  Future(Future&& other) noexcept = default;
  /// Abandons the state held (as the destructor does), then takes over `other`'s.
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;
  /// Dropping a pending Future forgets its waker; the Promise sees abandoned().
  ~Future() { abandon(); }

  /// True while the future has a state (not default-constructed, consumed or moved from).
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// True when the result is there.
  [[nodiscard]] bool is_ready() const noexcept { return state_ && state_->result.has_value(); }

  /// Ready with the outcome once set (the future is then consumed); else keeps `waker`.
  Poll<T> poll(const Waker& waker) {
    if (!state_) return Outcome<T>::failure(async_errc::no_state);
    if (state_->result) {
      Poll<T> out = std::move(state_->result);
      abandon();
      return out;
    }
    if (!state_->waiter.will_wake(waker)) state_->waiter = waker;
    return std::nullopt;
  }

  /// Consumes the future: returns a Future of f(value), where f runs in whatever callback
  /// completes this one (at once if it is already complete). An error or exception skips f and
  /// passes on; an exception thrown by f fails the returned future with it.
  template <class F>
  auto then(F&& f) -> Future<typename detail::ThenResult<T, std::decay_t<F>>::type> {
    using U = typename detail::ThenResult<T, std::decay_t<F>>::type;
    auto next = std::make_shared<detail::SharedState<U>>();
    auto step = [fn = std::forward<F>(f), next](Outcome<T>&& in) mutable {
      if (!in) {
        next->complete(Outcome<U>::failure_of(in));
        return;
      }
      try {
        if constexpr (std::is_void_v<U>) {
          if constexpr (std::is_void_v<T>) {
            fn();
          } else {
            fn(std::move(in).value());
          }
          next->complete(Outcome<U>());
        } else if constexpr (std::is_void_v<T>) {
          next->complete(Outcome<U>(fn()));
        } else {
          next->complete(Outcome<U>(fn(std::move(in).value())));
        }
      } catch (...) {
        next->complete(Outcome<U>::failure(std::current_exception()));
      }
    };
    if (!state_) {
      step(Outcome<T>::failure(async_errc::no_state));
    } else if (state_->result) {
      Outcome<T> r = std::move(*state_->result);
      abandon();
      step(std::move(r));
    } else {
      state_->continuation = std::move(step);
      state_->waiter.reset();
      state_.reset();  // the continuation keeps the chain alive through the Promise
    }
    return Future<U>(std::move(next));
  }

 private:
  template <class>
  friend class Promise;
  template <class>
  friend class Future;
  template <class U>
  friend Future<std::decay_t<U>> make_ready_future(U&& value);
  explicit Future(std::shared_ptr<detail::SharedState<T>> s) noexcept : state_(std::move(s)) {}

  void abandon() noexcept {
    if (!state_) return;
    state_->waiter.reset();
    state_->future_alive = false;
    state_.reset();
  }

  std::shared_ptr<detail::SharedState<T>> state_;
};

/// The producing end. Move-only; complete it once from callback code.
template <class T>
class Promise {
 public:
  /// A promise with a fresh shared state.
  Promise() : state_(std::make_shared<detail::SharedState<T>>()) {}
  /// Takes over the other promise's shared state, leaving it empty.
  Promise(Promise&&) noexcept = default;
  /// Breaks the promise held if it is not complete (as the destructor does), then takes over
  /// `other`'s.
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      break_promise();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  /// Fails the future with async_errc::broken_promise if no result was set.
  ~Promise() { break_promise(); }

  /// The future of this promise; call once.
  Future<T> get_future() {
    if (!state_ || retrieved_) return Future<T>();
    retrieved_ = true;
    return Future<T>(state_);
  }

  /// Completes with a value (the first completion wins).
  template <class... A>
  void set_value(A&&... value) {
    if (state_) state_->complete(Outcome<T>(std::forward<A>(value)...));
  }
  /// Completes with an error code.
  void set_error(std::error_code error) {
    if (state_) state_->complete(Outcome<T>::failure(error));
  }
  /// Completes with an exception.
  void set_exception(std::exception_ptr error) {
    if (state_) state_->complete(Outcome<T>::failure(std::move(error)));
  }
  /// True once completed.
  [[nodiscard]] bool completed() const noexcept { return state_ && state_->completed; }
  /// True when the future was dropped unconsumed, so producing a result is wasted work.
  [[nodiscard]] bool abandoned() const noexcept {
    return state_ && retrieved_ && !state_->future_alive && !state_->continuation &&
           !state_->completed;
  }

 private:
  void break_promise() noexcept {
    if (state_ && !state_->completed) {
      state_->complete(Outcome<T>::failure(async_errc::broken_promise));
    }
    state_.reset();
  }

  std::shared_ptr<detail::SharedState<T>> state_;
  bool retrieved_ = false;
};

/// A future that is already complete with `value`.
template <class U>
Future<std::decay_t<U>> make_ready_future(U&& value) {
  auto s = std::make_shared<detail::SharedState<std::decay_t<U>>>();
  s->complete(Outcome<std::decay_t<U>>(std::forward<U>(value)));
  return Future<std::decay_t<U>>(std::move(s));
}

}  // namespace reactor

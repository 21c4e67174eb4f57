// Outcome<T> and Poll<T>: what a future of the coroutine layer produces. An Outcome holds a value,
// a std::error_code or an exception; Poll<T> is "not yet" (empty) or the Outcome. The Pollable
// concept is the one interface every future here implements: poll(waker) either finishes or
// keeps the waker and promises to wake it when progress is possible.
//
// Errors: leaf futures (I/O, timers) fail with a std::error_code; code that throws inside a
// Task fails with the exception. Awaiting (co_await, block_on) turns an error code into a
// std::system_error and rethrows an exception as it was; outcome_of() gives the Outcome instead.
#pragma once

#include <exception>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace reactor {

class Waker;

/// The value of a void future where a container needs an object (when_all, when_any).
struct Unit {
  /// All Units are equal: there is nothing to compare.
  friend bool operator==(Unit, Unit) noexcept { return true; }
};

/// T, or Unit for void.
template <class T>
using value_or_unit = std::conditional_t<std::is_void_v<T>, Unit, T>;

/// Errors of the future layer that have no errno of their own.
enum class async_errc {
  end_of_stream = 1,  ///< read_exact: the peer closed before the buffer was full
  broken_promise,     ///< a Promise was destroyed without setting a result
  no_state,           ///< a default-constructed or already consumed Future / JoinHandle
};

/// The category of async_errc.
const std::error_category& async_category() noexcept;

/// Makes a std::error_code from async_errc.
inline std::error_code make_error_code(async_errc e) noexcept {
  return {static_cast<int>(e), async_category()};
}

/// A finished computation: a value, an error code or an exception.
template <class T>
class Outcome {
 public:
  /// What is held on success (Unit for void).
  using stored_type = value_or_unit<T>;

  /// A success; for void outcomes this is the only success.
  Outcome() requires std::is_void_v<T> : value_(std::in_place) {}
  /// A success holding `value`.
  Outcome(stored_type value)  // NOLINT(google-explicit-constructor)
      : value_(std::move(value)) {}

  /// A failure with `error` (must be non-zero).
  static Outcome failure(std::error_code error) {
    Outcome o(Failed{});
    o.error_ = error;
    return o;
  }
  /// A failure with an exception.
  static Outcome failure(std::exception_ptr error) {
    Outcome o(Failed{});
    o.exception_ = std::move(error);
    return o;
  }
  /// The same failure as `other` (which must be one), for another value type.
  template <class U>
  static Outcome failure_of(const Outcome<U>& other) {
    return other.exception() ? failure(other.exception()) : failure(other.error());
  }

  /// True when a value is held.
  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  /// Same as has_value().
  explicit operator bool() const noexcept { return has_value(); }
  /// The error code of a failure that has one (empty on success and for exceptions).
  [[nodiscard]] std::error_code error() const noexcept { return error_; }
  /// The exception of a failure that has one (null otherwise).
  [[nodiscard]] std::exception_ptr exception() const noexcept { return exception_; }

  /// The value; throws std::system_error for an error code, rethrows an exception.
  decltype(auto) value() & {
    check();
    if constexpr (!std::is_void_v<T>) return static_cast<T&>(*value_);
  }
  /// The value, moved out; throws like value() &.
  decltype(auto) value() && {
    check();
    if constexpr (!std::is_void_v<T>) return T(std::move(*value_));
  }
  /// The held value or Unit (only on success).
  stored_type& operator*() & { return *value_; }

 private:
  // A plain struct of three parts rather than a std::variant: simpler to move, and it keeps
  // GCC's -Wmaybe-uninitialized quiet under the sanitizers.
  struct Failed {};
  explicit Outcome(Failed) noexcept {}

  void check() const {
    if (exception_) std::rethrow_exception(exception_);
    if (!value_) throw std::system_error(error_);
  }

  std::optional<stored_type> value_;
  std::error_code error_;
  std::exception_ptr exception_;
};

/// The result of one poll: empty while pending, else the Outcome.
template <class T>
using Poll = std::optional<Outcome<T>>;

/// A future: has value_type and poll(const Waker&) -> Poll<value_type>. A pending poll keeps
/// (a copy of) the waker and wakes it when polling again may make progress. A future must not
/// be moved once it has been polled (the reactor may point into it); dropping it cancels it.
template <class F>
concept Pollable = requires(std::remove_cvref_t<F>& f, const Waker& w) {
  typename std::remove_cvref_t<F>::value_type;
  { f.poll(w) } -> std::same_as<Poll<typename std::remove_cvref_t<F>::value_type>>;
};

/// The value type of a future.
template <Pollable F>
using future_value_t = typename std::remove_cvref_t<F>::value_type;

}  // namespace reactor

template <>
struct std::is_error_code_enum<reactor::async_errc> : std::true_type {};

// Result<T>: a value or a std::error_code, for calls that return something on success.
#pragma once

#include <optional>
#include <system_error>
#include <utility>

#include "base/error.hpp"

namespace reactor {

/// Holds either a T or the std::error_code that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  /// A successful result.
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  /// A failed result; `error` must be non-zero.
  Result(std::error_code error) : error_(error) {}  // NOLINT(google-explicit-constructor)
  /// A failed result from the library's own codes.
  Result(errc error) : error_(make_error_code(error)) {}  // NOLINT(google-explicit-constructor)

  /// True when a value is held.
  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  /// Same as has_value().
  explicit operator bool() const noexcept { return has_value(); }
  /// The error (empty when a value is held).
  [[nodiscard]] std::error_code error() const noexcept { return error_; }
  /// The value; throws std::system_error when there is none.
  [[nodiscard]] const T& value() const& {
    if (!value_) throw std::system_error(error_);
    return *value_;
  }
  /// The value; throws std::system_error when there is none.
  [[nodiscard]] T& value() & {
    if (!value_) throw std::system_error(error_);
    return *value_;
  }
  /// The value, or `fallback` on error.
  [[nodiscard]] T value_or(T fallback) const { return value_ ? *value_ : std::move(fallback); }
  /// Same as value(): throws when there is none.
  const T& operator*() const& { return value(); }
  /// Same as value(): throws when there is none.
  T& operator*() & { return value(); }

 private:
  std::optional<T> value_;
  std::error_code error_;
};

}  // namespace reactor

// The library's own error codes, as a std::error_category, so every failure is a std::error_code.
// System failures keep their errno in std::system_category(); these cover misuse and limits.
#pragma once

#include <cerrno>
#include <system_error>

namespace reactor {

/// Errors the library reports that are not a plain errno.
enum class errc {
  invalid_handle = 1,    ///< negative handle, or a handle that is not open
  already_registered,    ///< the handle (or signal for this handler) is registered already
  not_registered,        ///< no such registration
  handle_out_of_range,   ///< select: handle >= FD_SETSIZE
  backend_unavailable,   ///< the asked-for backend is not built or the kernel refuses it
  unknown_backend,       ///< a backend name (e.g. REACTOR_BACKEND) that is not recognised
  invalid_argument,      ///< null handler, empty mask, bad signal number, empty callable
  registered_elsewhere,  ///< the handler is registered with another reactor
  reentrant_call,        ///< handle_events called from inside a handler hook
  timer_not_found,       ///< cancel/reset of a timer that is not pending
};

/// The category of reactor::errc.
const std::error_category& reactor_category() noexcept;

/// Makes a std::error_code from reactor::errc.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), reactor_category()};
}

/// The current errno as a std::error_code.
inline std::error_code last_system_error() noexcept { return {errno, std::system_category()}; }

}  // namespace reactor

template <>
struct std::is_error_code_enum<reactor::errc> : std::true_type {};

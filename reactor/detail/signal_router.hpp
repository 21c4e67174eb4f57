// Process-wide routing of POSIX signals to reactors through self-pipes. The OS-level handler only
// writes the signal number into each subscribed reactor's pipe; the reactor reads the pipe in its
// loop and calls handle_signal there, never in signal context.
#pragma once

#include <system_error>

namespace reactor::signal_router {

/// Routes `signum` to `pipe_write_fd` (installs the OS handler for the first subscriber).
/// Errors: errc::invalid_argument for signals that cannot be caught, or a full table.
std::error_code subscribe(int signum, int pipe_write_fd);

/// Stops routing `signum` to `pipe_write_fd`; restores the previous disposition of the signal
/// when no subscriber is left.
void unsubscribe(int signum, int pipe_write_fd) noexcept;

}  // namespace reactor::signal_router

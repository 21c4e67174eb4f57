// The library's only output channel: errors it cannot return to a caller (for example a failed
// system call inside a destructor) go to a process-wide sink the application may replace. The
// library never writes to stdout or stderr except through the default sink below.
#pragma once

#include <string_view>

namespace reactor {

/// How serious a log message is.
enum class LogLevel { debug, info, warning, error };

/// Receives every message; `context` is the pointer given to set_log_sink. Must be thread-safe.
using LogSink = void (*)(LogLevel level, std::string_view message, void* context);

/// Installs `sink` (nullptr restores the default, which prints warnings and errors to stderr).
void set_log_sink(LogSink sink, void* context = nullptr) noexcept;

/// Sends a message to the current sink. Never throws.
void log_message(LogLevel level, std::string_view message) noexcept;

/// The default sink: "reactor: <level>: <message>" on stderr for warnings and errors.
void default_log_sink(LogLevel level, std::string_view message, void* context) noexcept;

}  // namespace reactor

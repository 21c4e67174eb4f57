// Process-wide log sink.
#include "reactor/log.hpp"

#include <cstdio>
#include <mutex>

namespace reactor {
namespace {

std::mutex sink_mutex;
LogSink current_sink = nullptr;  // nullptr: default_log_sink
void* current_context = nullptr;

const char* level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "?";
}

}  // namespace

void default_log_sink(LogLevel level, std::string_view message, void* /*context*/) noexcept {
  if (level < LogLevel::warning) return;
  std::fprintf(stderr, "reactor: %s: %.*s\n", level_name(level), static_cast<int>(message.size()),
               message.data());
}

void set_log_sink(LogSink sink, void* context) noexcept {
  std::lock_guard lock(sink_mutex);
  current_sink = sink;
  current_context = context;
}

void log_message(LogLevel level, std::string_view message) noexcept {
  // Holding the lock while the sink runs keeps a sink from being replaced and freed mid-call.
  std::lock_guard lock(sink_mutex);
  try {
    (current_sink != nullptr ? current_sink : default_log_sink)(level, message, current_context);
  } catch (...) {  // a throwing sink must not take the reactor down with it
  }
}

}  // namespace reactor

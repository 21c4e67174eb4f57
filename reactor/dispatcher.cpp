// The Dispatcher's shared pieces: the one-line form of ReactorStats and the names dump() prints.
#include "reactor/dispatcher.hpp"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <typeinfo>
#include <utility>

namespace reactor {
namespace {

long long micros(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// A ratio with three decimals, without touching the stream's formatting state.
std::string three_decimals(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

}  // namespace

std::string handler_type_name(const EventHandler& handler) {
  const char* mangled = typeid(handler).name();
  int status = 0;
  char* readable = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && readable != nullptr ? readable : mangled;
  std::free(readable);  // NOLINT(cppcoreguidelines-no-malloc): allocated by the demangler
  return out;
}

std::string event_mask_name(EventMask m) {
  std::string out;
  const std::pair<EventMask, const char*> names[] = {{EventMask::read, "read"},
                                                     {EventMask::write, "write"},
                                                     {EventMask::except, "except"},
                                                     {EventMask::accept, "accept"},
                                                     {EventMask::connect, "connect"}};
  for (const auto& [bit, name] : names) {
    if (!any(m & bit)) continue;
    if (!out.empty()) out += '|';
    out += name;
  }
  return out.empty() ? "none" : out;
}

std::ostream& operator<<(std::ostream& os, const ReactorStats& s) {
  return os << "backend=" << backend_name(s.backend) << " iterations=" << s.iterations
            << " hooks=" << s.hooks_called << " input=" << s.input_events
            << " output=" << s.output_events << " except=" << s.exception_events
            << " timers_fired=" << s.timers_fired << " signals=" << s.signals_delivered
            << " notifications=" << s.notifications_run << " blocked_us=" << micros(s.time_blocked)
            << " dispatching_us=" << micros(s.time_dispatching)
            << " longest_dispatch_us=" << micros(s.longest_dispatch)
            << " busy_ratio=" << three_decimals(s.busy_ratio())
            << " handles=" << s.handles_registered << " timers_pending=" << s.timers_pending
            << " notifications_queued=" << s.notifications_queued;
}

}  // namespace reactor

// Messages for reactor::errc.
#include "base/error.hpp"

#include <string>

namespace reactor {
namespace {

class ReactorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "reactor"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_handle: return "invalid handle (negative or not an open descriptor)";
      case errc::already_registered: return "handle is already registered";
      case errc::not_registered: return "no such registration";
      case errc::handle_out_of_range:
        return "handle is too large for this backend (select: FD_SETSIZE)";
      case errc::backend_unavailable: return "demultiplexer backend is not available here";
      case errc::unknown_backend: return "unknown demultiplexer backend name";
      case errc::invalid_argument: return "invalid argument";
      case errc::registered_elsewhere: return "handler is registered with another reactor";
      case errc::reentrant_call: return "handle_events called from inside a handler";
      case errc::timer_not_found: return "no such pending timer";
    }
    return "unknown reactor error";
  }

  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_handle: return std::errc::bad_file_descriptor;
      case errc::already_registered: return std::errc::file_exists;
      case errc::not_registered: return std::errc::no_such_file_or_directory;
      case errc::handle_out_of_range: return std::errc::value_too_large;
      case errc::invalid_argument: return std::errc::invalid_argument;
      default: return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& reactor_category() noexcept {
  static const ReactorCategory category;
  return category;
}

}  // namespace reactor

// Default hooks of EventHandler.
#include "base/event_handler.hpp"

namespace reactor {

EventHandler::~EventHandler() {
  if (registry_ != nullptr) registry_->forget_handler(*this);
}

// An event nobody asked to handle removes the registration (as in ACE) instead of busy-looping
// on a level-triggered descriptor that no one drains.
int EventHandler::handle_input(Handle /*handle*/) { return -1; }
int EventHandler::handle_output(Handle /*handle*/) { return -1; }
int EventHandler::handle_exception(Handle /*handle*/) { return -1; }
int EventHandler::handle_timeout(TimePoint /*now*/, const void* /*arg*/) { return 0; }
int EventHandler::handle_signal(int /*signum*/) { return 0; }
int EventHandler::handle_close(Handle /*handle*/, EventMask /*removed*/) { return 0; }

}  // namespace reactor

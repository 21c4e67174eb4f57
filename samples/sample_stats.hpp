// Statistics for the sample servers: `--stats` prints the reactor's counters and one line per
// handler at exit, and SIGUSR1 prints them at any time (from the event loop, not in signal
// context). Shared by every sample server.
#pragma once

#include <signal.h>

#include <cstring>
#include <iostream>

#include "reactor/reactor.hpp"

namespace sample {

/// Removes "--stats" from argv (so each sample's own parser never sees it); true if present.
inline bool take_stats_flag(int& argc, char** argv) {
  bool found = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--stats") == 0) {
      found = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return found;
}

/// Dumps the reactor on SIGUSR1, and once more when destroyed if asked to. Declare it after the
/// Reactor so that it is destroyed first, while the reactor can still be read.
class StatsReporter final : public reactor::EventHandler {
 public:
  /// Watches SIGUSR1 on `r`; `at_exit` adds a final dump from the destructor.
  StatsReporter(reactor::Reactor& r, bool at_exit) : reactor_(r), at_exit_(at_exit) {
    (void)reactor_.register_signal(SIGUSR1, this);
  }
  StatsReporter(const StatsReporter&) = delete;
  StatsReporter& operator=(const StatsReporter&) = delete;
  ~StatsReporter() override {
    if (at_exit_) dump();
  }

  /// SIGUSR1: writes the counters and the handler lines to stdout.
  int handle_signal(int /*signum*/) override {
    dump();
    return 0;
  }

 private:
  void dump() {
    reactor_.dump(std::cout);
    std::cout.flush();
  }

  reactor::Reactor& reactor_;
  bool at_exit_;
};

}  // namespace sample

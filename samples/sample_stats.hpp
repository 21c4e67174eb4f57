// Statistics for the sample servers: `--stats` prints the reactor's counters and one line per
// handler at exit, and SIGUSR1 prints them at any time (from the event loop, not in signal
// context). Shared by every sample server. With several reactors (--threads N) there is one
// reporter per reactor, each labelled "[reactor I/N]" and run by its reactor's own thread; every
// block is written to stdout in one piece, so blocks from different threads never interleave.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstring>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>

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

/// "[reactor I/N]": the label of reactor `index` of a pool of `count` in the statistics.
inline std::string reactor_label(std::size_t index, std::size_t count) {
  return "[reactor " + std::to_string(index) + "/" + std::to_string(count) + "]";
}

/// Serialises the reporters' writes to stdout (several reactor threads may dump at once).
inline std::mutex& stats_output_mutex() {
  static std::mutex m;
  return m;
}

/// Dumps a reactor on SIGUSR1, and once more at exit if asked to. Declare it after the reactor
/// so that it is destroyed first, while the reactor can still be read. `Loop` is the reactor's
/// type (anything with register_signal, remove_signal and dump); it is deduced from the
/// constructor's argument.
template <class Loop>
class StatsReporter final : public reactor::EventHandler {
 public:
  /// Watches SIGUSR1 on `r`; `at_exit` adds a final dump (finish() or the destructor). A
  /// non-empty `label` is printed on a line of its own before every dump.
  StatsReporter(Loop& r, bool at_exit, std::string label = {})
      : reactor_(r), at_exit_(at_exit), label_(std::move(label)) {
    (void)reactor_.register_signal(SIGUSR1, this);
  }
  StatsReporter(const StatsReporter&) = delete;
  StatsReporter& operator=(const StatsReporter&) = delete;
  ~StatsReporter() override { finish(); }

  /// The at-exit dump, now (once; the destructor then prints nothing). Call it on the loop's
  /// thread or after the loop's thread has been joined.
  void finish() {
    if (at_exit_) dump();
    at_exit_ = false;
  }

  /// SIGUSR1: writes the counters and the handler lines to stdout.
  int handle_signal(int /*signum*/) override {
    dump();
    return 0;
  }

 private:
  void dump() {
    std::ostringstream text;
    if (!label_.empty()) text << label_ << '\n';
    reactor_.dump(text);
    const std::lock_guard<std::mutex> lock(stats_output_mutex());
    std::cout << text.str();
    std::cout.flush();
  }

  Loop& reactor_;
  bool at_exit_;
  std::string label_;
};

}  // namespace sample

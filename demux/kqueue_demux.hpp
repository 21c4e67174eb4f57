// KqueueDemux: BSD / macOS kqueue(2) backend. One knote per (descriptor, filter): EVFILT_READ
// and EVFILT_WRITE, plus EVFILT_EXCEPT (NOTE_OOB) where the platform has it. Knotes are
// level-triggered unless EV_CLEAR is given, so the reactor's semantics hold as they are. Events
// for the same descriptor are merged into one ReadyEvent per wait.
//
// Regular files and directories (vnodes) get no knotes: kqueue would report a regular file
// readable only while its offset is short of the end, so a reader would never hear of end of
// file, where poll and select call such files always ready. The backend keeps them itself and
// reports them ready on every wait, as the other backends do.
//
// On Linux this file is compiled only into the tests, against an epoll-based emulation of the
// kqueue API (tests/kqueue_emulation, limits in docs/kqueue_emulation.md).
#pragma once

#include <sys/types.h>

#include <sys/event.h>

#include <memory>
#include <vector>

#include "base/unique_fd.hpp"
#include "demux/demultiplexer.hpp"

namespace reactor {

class AlwaysReadySet;

/// kqueue(2) backend.
class KqueueDemux final : public Demultiplexer {
 public:
  /// Throws std::system_error when kqueue() fails (e.g. EMFILE).
  KqueueDemux();
  ~KqueueDemux() override;
  std::error_code add(int fd, EventMask interest) override;
  std::error_code modify(int fd, EventMask interest) override;
  std::error_code remove(int fd) override;
  std::error_code wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                       std::size_t& count) override;
  [[nodiscard]] Backend kind() const noexcept override { return Backend::kqueue; }

 private:
  std::error_code apply(int fd, EventMask from, EventMask to) noexcept;
  void merge(const struct kevent& ev, std::span<ReadyEvent> ready, std::size_t& count) noexcept;

  UniqueFd kq_;
  std::vector<EventMask> interest_;  // by fd: readiness bits registered, none when not watched
  std::vector<int> position_;        // by fd: index in the current wait's output, or -1
  std::vector<struct kevent> events_;
  std::unique_ptr<AlwaysReadySet> always_;  // regular files and directories (see above)
};

}  // namespace reactor

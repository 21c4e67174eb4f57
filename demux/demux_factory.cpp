// Chooses and creates a demultiplexer backend; REACTOR_BACKEND overrides the default choice so
// the whole test suite can be run on each backend in turn.
#include <algorithm>
#include <cstdlib>

#include "base/error.hpp"
#include "demux/demultiplexer.hpp"
#if REACTOR_HAVE_EPOLL
#include "demux/epoll_demux.hpp"
#endif
#if REACTOR_HAVE_KQUEUE
#include "demux/kqueue_demux.hpp"
#endif
#if REACTOR_HAVE_IO_URING
#include "demux/io_uring_demux.hpp"
#endif

namespace reactor {

std::string_view backend_name(Backend backend) noexcept {
  switch (backend) {
    case Backend::best: return "best";
    case Backend::select: return "select";
    case Backend::poll: return "poll";
    case Backend::epoll: return "epoll";
    case Backend::kqueue: return "kqueue";
    case Backend::io_uring: return "io_uring";
  }
  return "unknown";
}

std::error_code parse_backend(std::string_view name, Backend& out) noexcept {
  for (Backend b : {Backend::best, Backend::select, Backend::poll, Backend::epoll, Backend::kqueue,
                    Backend::io_uring}) {
    if (name == backend_name(b)) {
      out = b;
      return {};
    }
  }
  return errc::unknown_backend;
}

bool backend_available(Backend backend) noexcept {
  switch (backend) {
    case Backend::best:
    case Backend::select:
    case Backend::poll: return true;
    case Backend::epoll: return REACTOR_HAVE_EPOLL != 0;
    case Backend::kqueue: return REACTOR_HAVE_KQUEUE != 0;
    case Backend::io_uring:
#if REACTOR_HAVE_IO_URING
      // Compiled in is not enough: the kernel or a seccomp policy may refuse io_uring_setup.
      return io_uring_usable();
#else
      return false;
#endif
  }
  return false;
}

std::vector<Backend> available_backends() {
  std::vector<Backend> out;
  // io_uring after epoll: in this reactor's echo benchmark it matched epoll but did not beat it
  // (docs/io_uring_backend.md), so `best` stays epoll and this list says so.
  for (Backend b :
       {Backend::epoll, Backend::kqueue, Backend::io_uring, Backend::poll, Backend::select}) {
    if (backend_available(b)) out.push_back(b);
  }
  return out;
}

int timeout_to_ms(std::chrono::nanoseconds timeout) noexcept {
  if (timeout < std::chrono::nanoseconds::zero()) return -1;
  // Clamped first, so rounding up cannot step past the range either.
  return static_cast<int>(
      std::chrono::ceil<std::chrono::milliseconds>(std::min(timeout, max_wait)).count());
}

timespec timeout_to_timespec(std::chrono::nanoseconds timeout) noexcept {
  const auto t = std::clamp(timeout, std::chrono::nanoseconds::zero(), max_wait);
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(t);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(s.count());
  ts.tv_nsec = static_cast<long>((t - s).count());
  return ts;
}

std::error_code make_demultiplexer(Backend backend, std::unique_ptr<Demultiplexer>& out) {
  if (backend == Backend::best) {
    if (const char* env = std::getenv("REACTOR_BACKEND"); env != nullptr && *env != '\0') {
      if (auto ec = parse_backend(env, backend)) return ec;
    }
  }
  if (backend == Backend::best) {
    backend = REACTOR_HAVE_EPOLL    ? Backend::epoll
              : REACTOR_HAVE_KQUEUE ? Backend::kqueue
                                    : Backend::poll;
  }
  if (!backend_available(backend)) return errc::backend_unavailable;
  try {
    switch (backend) {
      case Backend::select: out = make_select_demux(); break;
      case Backend::poll: out = make_poll_demux(); break;
#if REACTOR_HAVE_EPOLL
      case Backend::epoll: out = std::make_unique<EpollDemux>(); break;
#endif
#if REACTOR_HAVE_KQUEUE
      case Backend::kqueue: out = std::make_unique<KqueueDemux>(); break;
#endif
#if REACTOR_HAVE_IO_URING
      case Backend::io_uring: out = std::make_unique<IoUringDemux>(); break;
#endif
      default: return errc::backend_unavailable;
    }
  } catch (const std::system_error& e) {
    return e.code();
  }
  return {};
}

}  // namespace reactor

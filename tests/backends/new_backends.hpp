// The backends this suite tests directly (io_uring, kqueue), each made without the factory so a
// backend the kernel refuses gives its reason, which the tests print when they skip.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

#include "demux/demultiplexer.hpp"
#if REACTOR_HAVE_IO_URING
#include "demux/io_uring_demux.hpp"
#endif
#if REACTOR_HAVE_KQUEUE || REACTOR_TEST_KQUEUE_EMULATED
#include "demux/kqueue_demux.hpp"
#endif

namespace reactor::test {

/// Makes a backend, or returns null and says why not.
using MakeBackend = std::unique_ptr<Demultiplexer> (*)(std::string& why);

/// One backend under test.
struct NewBackend {
  std::string name;
  MakeBackend make;
};

/// Names the parameter in gtest's messages (instead of a byte dump).
inline void PrintTo(const NewBackend& b, std::ostream* os) { *os << b.name; }

/// io_uring where liburing was found and the kernel allows it; otherwise null and the reason.
inline std::unique_ptr<Demultiplexer> make_io_uring(std::string& why) {
#if REACTOR_HAVE_IO_URING
  try {
    return std::make_unique<IoUringDemux>();
  } catch (const std::system_error& e) {
    why = std::string("io_uring refused by this kernel or sandbox: ") + e.what();
    return nullptr;
  }
#else
  why = "built without liburing (Meson did not find liburing-dev)";
  return nullptr;
#endif
}

/// The kqueue backend: real on the BSDs and macOS, over the epoll emulation on Linux.
inline std::unique_ptr<Demultiplexer> make_kqueue(std::string& why) {
#if REACTOR_HAVE_KQUEUE || REACTOR_TEST_KQUEUE_EMULATED
  (void)why;
  return std::make_unique<KqueueDemux>();
#else
  why = "no <sys/event.h> and no kqueue emulation in this build";
  return nullptr;
#endif
}

/// Both, always listed, so a missing one shows up as a visible skip.
inline std::vector<NewBackend> new_backends() {
  return {{"io_uring", make_io_uring},
          {REACTOR_HAVE_KQUEUE ? "kqueue" : "kqueue_emulated", make_kqueue}};
}

}  // namespace reactor::test

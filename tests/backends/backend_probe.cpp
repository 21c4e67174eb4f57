// backend_probe NAME: whether backend NAME can be the default backend (REACTOR_BACKEND=NAME) on
// this machine with this build. Prints "NAME: usable" and exits 0, or "NAME: unusable: why" and
// exits 1; 2 for a bad argument. scripts/test.sh asks it before running the suite on NAME, so a
// pass that cannot run is reported as skipped, with the reason, instead of failing or vanishing.
#include <cstdio>
#include <memory>
#include <string>
#include <system_error>

#include "demux/demultiplexer.hpp"
#if REACTOR_HAVE_IO_URING
#include "demux/io_uring_demux.hpp"
#endif

int main(int argc, char** argv) {
  using namespace reactor;
  if (argc != 2) {
    std::fprintf(stderr, "usage: backend_probe select|poll|epoll|kqueue|io_uring\n");
    return 2;
  }
  Backend backend{};
  if (parse_backend(argv[1], backend) || backend == Backend::best) {
    std::fprintf(stderr, "backend_probe: '%s' is not a backend name\n", argv[1]);
    return 2;
  }
  std::unique_ptr<Demultiplexer> demux;
  const std::error_code ec = make_demultiplexer(backend, demux);
  if (!ec) {
    std::printf("%s: usable\n", argv[1]);
    return 0;
  }
  // The factory only says "not available"; name the reason where one is known.
  std::string why = ec.message();
  if (backend == Backend::io_uring) {
#if REACTOR_HAVE_IO_URING
    std::error_code refused;
    if (!io_uring_usable(&refused)) {
      why = "the kernel or a seccomp policy refuses io_uring (" + refused.message() + ")";
    }
#else
    why = "built without liburing (Meson did not find liburing-dev)";
#endif
  }
  std::printf("%s: unusable: %s\n", argv[1], why.c_str());
  return 1;
}

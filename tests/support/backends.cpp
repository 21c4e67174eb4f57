// The backends the conformance suite is instantiated for.
#include <system_error>

#include "test_support.hpp"
#if REACTOR_TEST_KQUEUE_EMULATED
#include "demux/kqueue_demux.hpp"
#endif

namespace reactor::test {

std::vector<BackendParam> conformance_backends() {
  std::vector<BackendParam> out;
  for (Backend b : available_backends()) {
    out.push_back({std::string(backend_name(b)), [b] {
                     std::unique_ptr<Demultiplexer> d;
                     if (auto ec = make_demultiplexer(b, d)) throw std::system_error(ec);
                     return d;
                   }});
  }
#if REACTOR_TEST_KQUEUE_EMULATED
  // The real kqueue backend over the test-only epoll emulation (tests/kqueue_emulation).
  out.push_back({"kqueue_emulated", [] { return std::make_unique<KqueueDemux>(); }});
#endif
  return out;
}

}  // namespace reactor::test

// The backends the conformance suite is instantiated for.
#include <system_error>

#include "test_support.hpp"

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
  return out;
}

}  // namespace reactor::test

// libFuzzer target for the RESP2 command parser (samples/kv/resp_parser.cpp), driven the way
// kv_server does (parse, consume, repeat over pipelined commands). Checks: nothing is read outside
// the input (ASan), a complete command consumes a non-empty prefix that holds every argument,
// the limits hold, an error has a description, and the parser is stateless.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "samples/kv/resp_parser.hpp"

namespace {

using fuzz::check;

bool inside(std::string_view part, std::span<const char> whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void parse_pipeline(std::span<const char> input, const kv::RespLimits& limits) {
  std::vector<std::string_view> args;
  for (int round = 0; round < 1000 && !input.empty(); ++round) {
    const auto r = kv::parse_command(input, args, limits);
    if (r.status == kv::RespStatus::incomplete) {
      check(r.consumed == 0, "incomplete with consumed bytes");
      return;
    }
    if (r.status == kv::RespStatus::error) {
      check(!r.error.empty(), "error without a description");
      return;
    }
    check(r.consumed > 0 && r.consumed <= input.size(), "complete consumed out of range");
    check(r.consumed <= limits.max_frame, "frame over max_frame");
    check(args.size() <= limits.max_args, "more arguments than max_args");
    const auto taken = input.first(r.consumed);
    for (auto a : args) {
      check(inside(a, taken), "argument outside the command");
      check(a.size() <= limits.max_bulk || a.size() <= limits.max_inline, "argument over limits");
    }
    auto copy = std::make_unique<char[]>(r.consumed);
    std::copy(taken.begin(), taken.end(), copy.get());
    std::vector<std::string_view> again;
    const auto r2 = kv::parse_command({copy.get(), r.consumed}, again, limits);
    check(r2.status == kv::RespStatus::complete && r2.consumed == r.consumed,
          "the consumed prefix alone does not parse the same");
    check(again.size() == args.size(), "the consumed prefix alone gives other arguments");
    for (std::size_t i = 0; i < args.size(); ++i) {
      check(again[i] == args[i], "the consumed prefix alone gives other arguments");
    }
    input = input.subspan(r.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto copy = std::make_unique<char[]>(size);
  if (size > 0) std::copy(data, data + size, copy.get());
  const std::span<const char> input(copy.get(), size);
  parse_pipeline(input, kv::RespLimits{});
  // Small limits reach the over-limit paths with short inputs.
  parse_pipeline(input,
                 kv::RespLimits{.max_args = 3, .max_bulk = 16, .max_inline = 32, .max_frame = 64});
  return 0;
}

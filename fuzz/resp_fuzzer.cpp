// libFuzzer target for the RESP2 command parser (samples/kv/resp_parser.cpp), driven the way
// kv_server does (parse, consume, repeat over pipelined commands). Checks: nothing is read outside
// the input (ASan), a complete command consumes a non-empty prefix that holds every argument,
// the limits hold, an error has a description, and the parser is stateless.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "samples/kv/resp_parser.hpp"

namespace {

using fuzz::check;
using fuzz::inside;

// Parses every command at the front of `input` like the server's on_data loop.
void parse_pipeline(std::span<const char> input, const kv::RespLimits& limits) {
  using Args = std::vector<std::string_view>;
  fuzz::check_pipeline<Args>(
      input,
      [&](std::span<const char> bytes, Args& args) {
        return kv::parse_command(bytes, args, limits);
      },
      [](const kv::RespResult& r) { check(!r.error.empty(), "error without a description"); },
      [&](const Args& args, std::span<const char> taken) {
        check(taken.size() <= limits.max_frame, "frame over max_frame");
        check(args.size() <= limits.max_args, "more arguments than max_args");
        for (auto a : args) {
          check(inside(a, taken), "argument outside the command");
          check(a.size() <= limits.max_bulk || a.size() <= limits.max_inline,
                "argument over limits");
        }
      },
      [](const Args& again, const Args& args) {
        check(again == args, "the consumed prefix alone gives other arguments");
      });
}

// Small limits: they reach the over-limit paths with short inputs.
const kv::RespLimits small_limits{.max_args = 3, .max_bulk = 16, .max_inline = 32, .max_frame = 64};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run_with_limits(data, size, {kv::RespLimits{}, small_limits}, parse_pipeline);
}

// Shared by the fuzzers: a check that aborts with a message, so a broken invariant is reported
// by libFuzzer as a crash (with the input saved) rather than passing silently; exactly sized
// copies of the input, so a read one past the end trips ASan; and the driver of the protocol
// parsers (HTTP, RESP) with the checks every one of them must pass.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>

namespace fuzz {

/// Aborts with `what` when `ok` is false. Unlike assert(), it is never compiled out.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

/// True when `part` lies inside `whole`. An empty view may point anywhere (or nowhere).
inline bool inside(std::string_view part, std::span<const char> whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

/// A heap copy of some bytes in a block of exactly their size.
class ExactCopy {
 public:
  explicit ExactCopy(std::span<const char> bytes)
      : data_(std::make_unique<char[]>(bytes.size())), size_(bytes.size()) {
    std::copy(bytes.begin(), bytes.end(), data_.get());
  }
  /// libFuzzer's input (`data` may be null when `size` is 0).
  ExactCopy(const std::uint8_t* data, std::size_t size)
      : ExactCopy(std::span<const char>(reinterpret_cast<const char*>(data), size)) {}

  [[nodiscard]] std::span<const char> span() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_;
};

/// The body of a parser fuzzer: `drive(input, limits)` on an exactly sized copy of libFuzzer's
/// input, once for each of `limits`.
template <class Limits, class Drive>
int run_with_limits(const std::uint8_t* data, std::size_t size,
                    std::initializer_list<Limits> limits, Drive drive) {
  const ExactCopy input(data, size);
  for (const Limits& l : limits) drive(input.span(), l);
  return 0;
}

/// Drives a parser over a pipelined buffer the way the sample servers' on_data loops do (parse,
/// consume, repeat) and checks what a server relies on of every such parser: an incomplete
/// result consumes nothing, a complete one a non-empty prefix, and the parser is stateless (that
/// prefix alone, in an exactly sized copy, parses the same). `parse(bytes, out)` fills an `Out`
/// and returns a result with `status` (incomplete, complete or error) and `consumed`;
/// `check_error(result)` and `check_complete(out, prefix)` check what is the parser's own, and
/// `check_same(again, out)` that the prefix alone gave the same `Out`.
template <class Out, class Parse, class CheckError, class CheckComplete, class CheckSame>
void check_pipeline(std::span<const char> input, Parse parse, CheckError check_error,
                    CheckComplete check_complete, CheckSame check_same) {
  Out out;
  for (int round = 0; round < 1000 && !input.empty(); ++round) {
    const auto r = parse(input, out);
    using Status = decltype(r.status);
    if (r.status == Status::incomplete) {
      check(r.consumed == 0, "incomplete with consumed bytes");
      return;
    }
    if (r.status == Status::error) {
      check_error(r);
      return;
    }
    check(r.consumed > 0 && r.consumed <= input.size(), "complete consumed out of range");
    const auto prefix = input.first(r.consumed);
    check_complete(out, prefix);
    const ExactCopy alone(prefix);
    Out again;
    const auto r2 = parse(alone.span(), again);
    check(r2.status == Status::complete && r2.consumed == r.consumed,
          "the consumed prefix alone does not parse the same");
    check_same(again, out);
    input = input.subspan(r.consumed);
  }
}

}  // namespace fuzz

// RESP2 request parser: see resp_parser.hpp.
#include "samples/kv/resp_parser.hpp"

#include <algorithm>
#include <cstring>

namespace kv {
namespace {

RespResult need_more() { return {RespStatus::incomplete, 0, {}}; }
RespResult fail(std::string_view why) { return {RespStatus::error, 0, why}; }

// Index of the '\n' ending the line that starts at `from`, searching at most `limit` bytes;
// npos when there is none yet.
std::size_t find_lf(std::string_view in, std::size_t from, std::size_t limit) noexcept {
  if (from >= in.size()) return std::string_view::npos;
  const std::size_t n = std::min(limit, in.size() - from);
  const void* p = std::memchr(in.data() + from, '\n', n);
  return p == nullptr ? std::string_view::npos
                      : static_cast<std::size_t>(static_cast<const char*>(p) - in.data());
}

// Parses a signed decimal of at most 18 digits (so it cannot overflow) into `out`.
bool parse_length(std::string_view s, long long& out) noexcept {
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 18) return false;
  long long n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  out = negative ? -n : n;
  return true;
}

enum class Header { ok, incomplete, bad };

// Reads a "<prefix><integer>\r\n" line at `pos`; advances `pos` past it.
Header read_header(std::string_view in, std::size_t& pos, const RespLimits& limits,
                   long long& value) {
  const std::size_t lf = find_lf(in, pos, limits.max_inline);
  if (lf == std::string_view::npos) {
    // A header line is a few digits; a long one without a line end will never be valid.
    return in.size() - pos >= limits.max_inline ? Header::bad : Header::incomplete;
  }
  if (lf < pos + 2 || in[lf - 1] != '\r') return Header::bad;
  if (!parse_length(in.substr(pos + 1, lf - 1 - (pos + 1)), value)) return Header::bad;
  pos = lf + 1;
  return Header::ok;
}

RespResult parse_array(std::string_view in, std::vector<std::string_view>& args,
                       const RespLimits& limits) {
  std::size_t pos = 0;
  long long count = 0;
  switch (read_header(in, pos, limits, count)) {
    case Header::incomplete: return need_more();
    case Header::bad: return fail("invalid array length");
    case Header::ok: break;
  }
  // "*0" and "*-1" carry no command; they are consumed and ignored.
  if (count <= 0) return {RespStatus::complete, pos, {}};
  if (static_cast<unsigned long long>(count) > limits.max_args) return fail("too many arguments");
  for (long long i = 0; i < count; ++i) {
    if (pos >= in.size()) return need_more();
    if (in[pos] != '$') return fail("expected a bulk string");
    long long length = 0;
    switch (read_header(in, pos, limits, length)) {
      case Header::incomplete: return need_more();
      case Header::bad: return fail("invalid bulk length");
      case Header::ok: break;
    }
    if (length < 0) return fail("invalid bulk length");
    if (static_cast<unsigned long long>(length) > limits.max_bulk) return fail("bulk too large");
    const auto n = static_cast<std::size_t>(length);
    if (pos + n + 2 > limits.max_frame) return fail("command too large");
    if (in.size() - pos < n + 2) return need_more();
    if (in[pos + n] != '\r' || in[pos + n + 1] != '\n') return fail("bulk not followed by CRLF");
    args.push_back(in.substr(pos, n));
    pos += n + 2;
  }
  return {RespStatus::complete, pos, {}};
}

RespResult parse_inline(std::string_view in, std::vector<std::string_view>& args,
                        const RespLimits& limits) {
  const std::size_t lf = find_lf(in, 0, limits.max_inline);
  if (lf == std::string_view::npos) {
    return in.size() >= limits.max_inline ? fail("inline command too long") : need_more();
  }
  std::string_view line = in.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t begin = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i == begin) break;
    if (args.size() == limits.max_args) return fail("too many arguments");
    args.push_back(line.substr(begin, i - begin));
  }
  return {RespStatus::complete, lf + 1, {}};
}

}  // namespace

RespResult parse_command(std::span<const char> input, std::vector<std::string_view>& args,
                         const RespLimits& limits) {
  args.clear();
  const std::string_view in(input.data(), input.size());
  if (in.empty()) return need_more();
  RespResult r = in.front() == '*' ? parse_array(in, args, limits) : parse_inline(in, args, limits);
  if (r.status != RespStatus::complete) args.clear();
  return r;
}

}  // namespace kv

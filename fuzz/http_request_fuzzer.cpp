// libFuzzer target for the HTTP/1.x request parser (samples/http/http_parser.cpp). It drives the
// parser the way http_server does (parse, consume, repeat over a pipelined buffer) and checks
// what a server relies on: nothing is read outside the input (ASan), a complete request consumes
// a non-empty prefix and every view points inside it, an error carries one of the documented
// status codes, and the parser is stateless (the consumed prefix alone parses the same way).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "samples/http/http_parser.hpp"

namespace {

using fuzz::check;

bool inside(std::string_view part, std::span<const char> whole) {
  if (part.empty()) return true;  // empty views may point anywhere (or nowhere)
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool documented_code(std::uint16_t code) {
  switch (code) {
    case 400:
    case 413:
    case 414:
    case 431:
    case 501:
    case 505: return true;
    default: return false;
  }
}

void check_request(const http::Request& req, std::span<const char> input, std::size_t consumed,
                   const http::Limits& limits) {
  const std::span<const char> taken = input.first(consumed);
  check(inside(req.method, taken) && !req.method.empty(), "method outside the request");
  check(inside(req.target, taken) && !req.target.empty(), "target outside the request");
  check(req.header_count <= http::max_header_slots, "header_count over the slots");
  check(req.header_count <= limits.max_headers, "more headers than max_headers");
  for (const auto& h : req.header_list()) {
    check(inside(h.name, taken) && inside(h.value, taken), "header outside the request");
  }
  check(inside(req.body, taken), "body outside the request");
  check(req.body.size() <= limits.max_body, "body over max_body");
}

// Parses every request at the front of `input` like the server's on_data loop.
void parse_pipeline(std::span<const char> input, const http::Limits& limits) {
  http::Request req;
  for (int round = 0; round < 1000 && !input.empty(); ++round) {
    const auto r = http::parse_request(input, req, limits);
    if (r.status == http::ParseStatus::incomplete) {
      check(r.consumed == 0, "incomplete with consumed bytes");
      return;
    }
    if (r.status == http::ParseStatus::error) {
      check(documented_code(r.status_code), "error with an undocumented status code");
      return;
    }
    check(r.consumed > 0 && r.consumed <= input.size(), "complete consumed out of range");
    check_request(req, input, r.consumed, limits);
    // Stateless: the request's own bytes, in an exactly sized copy, give the same answer.
    auto copy = std::make_unique<char[]>(r.consumed);
    std::copy(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(r.consumed), copy.get());
    http::Request again;
    const auto r2 = http::parse_request({copy.get(), r.consumed}, again, limits);
    check(r2.status == http::ParseStatus::complete && r2.consumed == r.consumed,
          "the consumed prefix alone does not parse the same");
    check(again.method == req.method && again.target == req.target &&
              again.header_count == req.header_count && again.body == req.body,
          "the consumed prefix alone gives another request");
    input = input.subspan(r.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exactly sized heap copy, so a read one past the end trips ASan.
  auto copy = std::make_unique<char[]>(size);
  if (size > 0) std::copy(data, data + size, copy.get());
  const std::span<const char> input(copy.get(), size);
  parse_pipeline(input, http::Limits{});
  // Small limits reach the 413 / 414 / 431 paths with short inputs.
  parse_pipeline(
      input,
      http::Limits{.max_request_line = 64, .max_head = 256, .max_headers = 4, .max_body = 32});
  return 0;
}

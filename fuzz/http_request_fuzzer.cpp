// libFuzzer target for the HTTP/1.x request parser (samples/http/http_parser.cpp). It drives the
// parser the way http_server does (parse, consume, repeat over a pipelined buffer) and checks
// what a server relies on: nothing is read outside the input (ASan), a complete request consumes
// a non-empty prefix and every view points inside it, an error carries one of the documented
// status codes, and the parser is stateless (the consumed prefix alone parses the same way).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "samples/http/http_parser.hpp"

namespace {

using fuzz::check;
using fuzz::inside;

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

void check_request(const http::Request& req, std::span<const char> taken,
                   const http::Limits& limits) {
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
  fuzz::check_pipeline<http::Request>(
      input,
      [&](std::span<const char> bytes, http::Request& req) {
        return http::parse_request(bytes, req, limits);
      },
      [](const http::ParseResult& r) {
        check(documented_code(r.status_code), "error with an undocumented status code");
      },
      [&](const http::Request& req, std::span<const char> taken) {
        check_request(req, taken, limits);
      },
      [](const http::Request& again, const http::Request& req) {
        check(again.method == req.method && again.target == req.target &&
                  again.header_count == req.header_count && again.body == req.body,
              "the consumed prefix alone gives another request");
      });
}

// Small limits: they reach the 413 / 414 / 431 paths with short inputs.
const http::Limits small_limits{
    .max_request_line = 64, .max_head = 256, .max_headers = 4, .max_body = 32};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run_with_limits(data, size, {http::Limits{}, small_limits}, parse_pipeline);
}

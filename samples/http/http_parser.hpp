// HTTP/1.x request parser for the http_server sample: request line, header fields and
// Content-Length bodies. Pure and stateless: give it the bytes received so far and it says
// whether they start with a complete request, need more bytes, or are malformed (with the status
// code to answer). Every size is bounded, nothing is read past the span, and nothing is copied:
// the parsed request points into the caller's buffer. Single entry point: parse_request().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace http {

/// Upper bounds on what one request may contain; exceeding one yields an error status.
struct Limits {
  /// Longest request line (method, target, version) without its line end; longer: 414.
  std::size_t max_request_line = 8192;
  /// Longest head (request line, header fields, empty line); longer: 431.
  std::size_t max_head = 16384;
  /// Most header fields; more: 431.
  std::size_t max_headers = 64;
  /// Largest Content-Length accepted; larger: 413.
  std::size_t max_body = 1 << 20;
};

/// The most header fields a Request can hold, whatever Limits say.
inline constexpr std::size_t max_header_slots = 64;

/// What a parse attempt found.
enum class ParseStatus : std::uint8_t {
  complete,    ///< a whole request (head and body) was parsed; see consumed
  incomplete,  ///< no error so far, but more bytes are needed
  error,       ///< malformed or over a limit; see status_code; the connection should close
};

/// The protocol versions this parser accepts.
enum class Version : std::uint8_t { http10, http11 };

/// One header field as it appeared (name case preserved, value without surrounding blanks).
struct Header {
  std::string_view name;
  std::string_view value;
};

/// A parsed request. Every view points into the span given to parse_request.
struct Request {
  std::string_view method;
  std::string_view target;
  Version version = Version::http11;
  std::array<Header, max_header_slots> headers{};
  std::size_t header_count = 0;
  std::string_view body;
  /// Whether the connection may stay open after the response (version default and Connection).
  bool keep_alive = true;

  /// The header fields that were parsed.
  [[nodiscard]] std::span<const Header> header_list() const noexcept {
    return {headers.data(), header_count};
  }
  /// The value of the first field named `name` (ASCII case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

/// The outcome of parse_request.
struct ParseResult {
  ParseStatus status = ParseStatus::incomplete;
  /// Bytes of the input taken by the request (complete only; zero otherwise).
  std::size_t consumed = 0;
  /// The HTTP status to answer with (error only): 400, 413, 414, 431, 501 or 505.
  std::uint16_t status_code = 0;
};

/// Parses the request at the start of `input`. On complete, `out` describes it; on incomplete
/// or error, `out` holds unspecified partial results. Never reads outside `input`.
ParseResult parse_request(std::span<const char> input, Request& out, const Limits& limits = {});

/// True when `a` and `b` are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace http

// HTTP/1.x request parser: see http_parser.hpp. The grammar follows RFC 9112 closely enough to
// reject what would be ambiguous between us and a proxy (obs-fold, blanks before the colon,
// conflicting Content-Length, Transfer-Encoding), and is lenient only where the RFC allows it
// (bare LF as a line end, empty lines before the request line).
#include "samples/http/http_parser.hpp"

#include <algorithm>
#include <cstring>

namespace http {
namespace {

constexpr std::uint16_t bad_request = 400;
constexpr std::uint16_t content_too_large = 413;
constexpr std::uint16_t uri_too_long = 414;
constexpr std::uint16_t header_fields_too_large = 431;
constexpr std::uint16_t not_implemented = 501;
constexpr std::uint16_t version_not_supported = 505;

ParseResult fail(std::uint16_t code) { return {ParseStatus::error, 0, code}; }
ParseResult need_more() { return {ParseStatus::incomplete, 0, 0}; }

// RFC 9110 tchar: what method and field names are made of.
bool is_token_char(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_token_char(static_cast<unsigned char>(c));
  });
}

// Field values may hold visible characters, blanks and obs-text, never other controls (a bare CR
// or a NUL would let two parsers disagree about where the field ends).
bool is_field_value(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// The request target: visible ASCII only (no blanks, controls or raw non-ASCII).
bool is_target(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
}

std::string_view trim_blanks(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Finds the next line end in [from, limit) of `in`. Returns the index of '\n', or npos.
std::size_t find_lf(std::string_view in, std::size_t from, std::size_t limit) noexcept {
  limit = std::min(limit, in.size());
  if (from >= limit) return std::string_view::npos;
  const void* p = std::memchr(in.data() + from, '\n', limit - from);
  return p == nullptr ? std::string_view::npos
                      : static_cast<std::size_t>(static_cast<const char*>(p) - in.data());
}

// The line [begin, lf) without its optional CR; false when a CR appears anywhere else in it.
bool line_at(std::string_view in, std::size_t begin, std::size_t lf, std::string_view& line) {
  line = in.substr(begin, lf - begin);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line.find('\r') == std::string_view::npos;
}

// Rejects early a request line that cannot become valid, so a client speaking another protocol
// (TLS, binary junk) gets its 400 at once rather than after max_request_line bytes.
bool method_prefix_ok(std::string_view partial) noexcept {
  for (char ch : partial) {
    if (ch == ' ') return true;
    if (!is_token_char(static_cast<unsigned char>(ch))) return false;
  }
  return true;
}

// "HTTP/" DIGIT "." DIGIT. Returns 0 when accepted (setting `out`), else the status to answer.
std::uint16_t parse_version(std::string_view v, Version& out) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return bad_request;
  const char major = v[5];
  const char minor = v[7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9') return bad_request;
  if (major != '1') return version_not_supported;
  // RFC 9110 section 2.5: a 1.x minor version we do not know is answered as 1.1.
  out = minor == '0' ? Version::http10 : Version::http11;
  return 0;
}

std::uint16_t parse_request_line(std::string_view line, Request& out) noexcept {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return bad_request;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return bad_request;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!is_token(out.method) || !is_target(out.target)) return bad_request;
  return parse_version(line.substr(sp2 + 1), out.version);
}

// Content-Length: 1*DIGIT, bounded. Returns 0 and sets `out`, or the status to answer.
std::uint16_t parse_content_length(std::string_view v, std::size_t max, std::size_t& out) noexcept {
  if (v.empty()) return bad_request;
  std::size_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return bad_request;
    n = n * 10 + static_cast<std::size_t>(c - '0');
    if (n > max) return content_too_large;  // checked per digit, so n never overflows
  }
  out = n;
  return 0;
}

// Notes which of "close" and "keep-alive" a Connection field lists (comma-separated, any case).
void scan_connection(std::string_view v, bool& close, bool& keep_alive) noexcept {
  while (!v.empty()) {
    const std::size_t comma = v.find(',');
    const std::string_view option = trim_blanks(v.substr(0, comma));
    if (iequals(option, "close")) close = true;
    if (iequals(option, "keep-alive")) keep_alive = true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// Checks the fields that change framing or connection handling once the head is complete.
// Sets body_length. Returns 0 or the status to answer.
std::uint16_t apply_semantics(Request& out, const Limits& limits, std::size_t& body_length) {
  bool has_length = false;
  bool has_host = false;
  bool close_asked = false;
  bool keep_alive_asked = false;
  body_length = 0;
  for (const Header& h : out.header_list()) {
    if (iequals(h.name, "content-length")) {
      std::size_t n = 0;
      if (auto code = parse_content_length(h.value, limits.max_body, n)) return code;
      if (has_length && n != body_length) return bad_request;
      has_length = true;
      body_length = n;
    } else if (iequals(h.name, "transfer-encoding")) {
      // Request bodies in chunked (or any other) coding are not supported: RFC 9112 asks for
      // 501 when the coding is not understood. Together with a length it is a smuggling attempt.
      return bad_request;
    } else if (iequals(h.name, "host")) {
      if (has_host) return bad_request;
      has_host = true;
    } else if (iequals(h.name, "connection")) {
      scan_connection(h.value, close_asked, keep_alive_asked);
    }
  }
  if (out.version == Version::http11 && !has_host) return bad_request;
  // HTTP/1.1 is persistent unless "close" is asked for; 1.0 only when "keep-alive" is.
  const bool persistent = out.version == Version::http11 || keep_alive_asked;
  out.keep_alive = persistent && !close_asked;
  return 0;
}

bool has_transfer_encoding_only(const Request& out) {
  bool te = false;
  for (const Header& h : out.header_list()) {
    if (iequals(h.name, "content-length")) return false;
    if (iequals(h.name, "transfer-encoding")) te = true;
  }
  return te;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x | 0x20);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y | 0x20);
    if (x != y) return false;
  }
  return true;
}

std::string_view Request::header(std::string_view name) const noexcept {
  for (const Header& h : header_list()) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

ParseResult parse_request(std::span<const char> input, Request& out, const Limits& limits) {
  const std::string_view in(input.data(), input.size());
  out.header_count = 0;
  out.body = {};

  // Empty lines before the request line are ignored (RFC 9112 section 2.2), within max_head.
  std::size_t start = 0;
  while (start < in.size() && (in[start] == '\n' || in[start] == '\r')) ++start;
  if (start > limits.max_head) return fail(header_fields_too_large);
  const std::size_t head_limit = start + limits.max_head;

  const std::size_t line_limit = start + limits.max_request_line + 2;  // + CRLF
  const std::size_t lf = find_lf(in, start, line_limit);
  if (lf == std::string_view::npos) {
    if (!method_prefix_ok(in.substr(start))) return fail(bad_request);
    return in.size() >= line_limit ? fail(uri_too_long) : need_more();
  }
  std::string_view line;
  if (!line_at(in, start, lf, line)) return fail(bad_request);
  if (line.size() > limits.max_request_line) return fail(uri_too_long);
  if (auto code = parse_request_line(line, out)) return fail(code);

  const std::size_t max_fields = std::min(limits.max_headers, max_header_slots);
  std::size_t pos = lf + 1;
  for (;;) {
    const std::size_t next = find_lf(in, pos, head_limit);
    if (next == std::string_view::npos) {
      return in.size() >= head_limit ? fail(header_fields_too_large) : need_more();
    }
    if (!line_at(in, pos, next, line)) return fail(bad_request);
    pos = next + 1;
    if (line.empty()) break;
    // A line starting with a blank continues the previous field (obs-fold); RFC 9112 lets a
    // server reject it, and accepting it is a known request-smuggling vector.
    if (line.front() == ' ' || line.front() == '\t') return fail(bad_request);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(bad_request);
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_blanks(line.substr(colon + 1));
    if (!is_token(name) || !is_field_value(value)) return fail(bad_request);
    if (out.header_count == max_fields) return fail(header_fields_too_large);
    out.headers[out.header_count++] = {name, value};
  }

  std::size_t body_length = 0;
  if (has_transfer_encoding_only(out)) return fail(not_implemented);
  if (auto code = apply_semantics(out, limits, body_length)) return fail(code);
  if (in.size() - pos < body_length) return need_more();
  out.body = in.substr(pos, body_length);
  return {ParseStatus::complete, pos + body_length, 0};
}

}  // namespace http

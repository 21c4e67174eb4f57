// Routing and response formatting of the http_server sample: see http_service.hpp.
#include "samples/http/http_service.hpp"

#include <charconv>
#include <ctime>

namespace http {
namespace {

constexpr std::string_view hello_body = "Hello from reactor http_server\n";
constexpr std::string_view health_body = "ok\n";
constexpr std::string_view json_body = "{\"message\":\"Hello, World!\"}\n";

// The Date field, formatted at most once a second: gmtime and strftime are too slow to run for
// each of a pipelined batch of requests. One cache per thread keeps this safe without locks.
std::string_view http_date() {
  thread_local std::time_t cached_at = 0;
  thread_local char text[40] = {};
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_at || length == 0) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_at = now;
  }
  return {text, length};
}

void append_number(std::string& out, std::size_t n) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;  // 24 digits always suffice for a size_t
  out.append(digits, end);
}

void append_head(std::string& out, std::uint16_t status, std::string_view content_type,
                 std::size_t length, bool keep_alive, bool http10_keep_alive) {
  out.append("HTTP/1.1 ");
  append_number(out, status);
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\nServer: reactor-http\r\nDate: ");
  out.append(http_date());
  out.append("\r\nContent-Type: ");
  out.append(content_type);
  out.append("\r\nContent-Length: ");
  append_number(out, length);
  // 1.1 clients assume persistence; a 1.0 client needs to be told, and anyone must be told when
  // we are about to close.
  if (!keep_alive) {
    out.append("\r\nConnection: close");
  } else if (http10_keep_alive) {
    out.append("\r\nConnection: keep-alive");
  }
  out.append("\r\n\r\n");
}

struct Route {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;  // empty for /echo, whose body is the request's
  bool echo;
};

constexpr Route routes[] = {
    {"/", "text/plain; charset=utf-8", hello_body, false},
    {"/index.html", "text/plain; charset=utf-8", hello_body, false},
    {"/health", "text/plain; charset=utf-8", health_body, false},
    {"/json", "application/json", json_body, false},
    {"/echo", "application/octet-stream", {}, true},
};

const Route* find_route(std::string_view target) {
  const std::size_t query = target.find('?');
  const std::string_view path = target.substr(0, query);
  for (const Route& r : routes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

void respond_text(const Request& request, std::uint16_t status, std::string_view body,
                  std::string& out, std::string_view extra_field = {}) {
  const bool ka10 = request.version == Version::http10 && request.keep_alive;
  append_head(out, status, "text/plain; charset=utf-8", body.size(), request.keep_alive, ka10);
  if (!extra_field.empty()) {
    // Insert before the blank line that ends the head.
    out.insert(out.size() - 2, extra_field);
  }
  if (request.method != "HEAD") out.append(body);
}

}  // namespace

std::string_view reason_phrase(std::uint16_t status) noexcept {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void respond(const Request& request, std::string& out) {
  const Route* route = find_route(request.target);
  if (route == nullptr) {
    respond_text(request, 404, "not found\n", out);
    return;
  }
  const bool is_head = request.method == "HEAD";
  const bool allowed = route->echo ? request.method == "POST" : request.method == "GET" || is_head;
  if (!allowed) {
    respond_text(request, 405, "method not allowed\n", out,
                 route->echo ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n");
    return;
  }
  const std::string_view body = route->echo ? request.body : route->body;
  const bool ka10 = request.version == Version::http10 && request.keep_alive;
  append_head(out, 200, route->content_type, body.size(), request.keep_alive, ka10);
  if (!is_head) out.append(body);
}

void respond_error(std::uint16_t status, std::string& out) {
  const std::string_view phrase = reason_phrase(status);
  append_head(out, status, "text/plain; charset=utf-8", phrase.size() + 1, false, false);
  out.append(phrase);
  out.push_back('\n');
}

}  // namespace http

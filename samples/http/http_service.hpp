// The http_server sample's application: which response each parsed request gets. Kept apart from
// the socket code so the routing and the exact response bytes are unit-tested without a network.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "samples/http/http_parser.hpp"

namespace http {

/// Appends to `out` the whole response to `request` (status line, fields, body). The response
/// says "Connection: close" exactly when request.keep_alive is false.
void respond(const Request& request, std::string& out);

/// Appends to `out` an error response for a request that could not be parsed; it always says
/// "Connection: close", since the rest of the byte stream cannot be trusted.
void respond_error(std::uint16_t status, std::string& out);

/// The reason phrase of `status` ("OK", "Not Found"...), or "Unknown".
std::string_view reason_phrase(std::uint16_t status) noexcept;

}  // namespace http

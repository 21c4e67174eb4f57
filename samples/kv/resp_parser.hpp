// RESP2 request parser for the kv_server sample: arrays of bulk strings (what redis-cli and
// redis-benchmark send) and inline commands (a line of blank-separated words, what a person types
// into nc). Pure and stateless: give it the bytes received so far and it says whether they start
// with a complete command, need more bytes, or are malformed. Every size is bounded, nothing is
// read past the span, and nothing is copied: the arguments point into the caller's buffer.
// Single entry point: parse_command().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kv {

/// Upper bounds on one command; exceeding one is a protocol error.
struct RespLimits {
  /// Most elements in one array (arguments of one command).
  std::size_t max_args = 1024;
  /// Largest bulk string.
  std::size_t max_bulk = 1 << 20;
  /// Longest inline command line, and longest "*N" / "$N" header line.
  std::size_t max_inline = 64 * 1024;
  /// Largest whole frame (array header, every bulk and their line ends).
  std::size_t max_frame = 4 << 20;
};

/// What a parse attempt found.
enum class RespStatus : std::uint8_t {
  complete,    ///< a whole command was parsed (possibly with no arguments: ignore it)
  incomplete,  ///< no error so far, but more bytes are needed
  error,       ///< malformed or over a limit; see error; the connection should close
};

/// The outcome of parse_command.
struct RespResult {
  RespStatus status = RespStatus::incomplete;
  /// Bytes of the input taken by the command (complete only; zero otherwise).
  std::size_t consumed = 0;
  /// A short description of the problem (error only), suitable for an error reply.
  std::string_view error;
};

/// Parses the command at the start of `input` into `args` (cleared first; its capacity is kept,
/// so a connection that reuses one vector allocates nothing in the steady state). On complete,
/// `args` holds the arguments; an empty `args` means an empty line or array, to be skipped.
RespResult parse_command(std::span<const char> input, std::vector<std::string_view>& args,
                         const RespLimits& limits = {});

}  // namespace kv

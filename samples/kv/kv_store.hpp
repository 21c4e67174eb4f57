// The kv_server sample's data and commands: an in-memory map of byte strings with optional
// expiry on the monotonic clock, executing one parsed command at a time and appending its RESP2
// reply. No sockets here, so every command and reply is unit-tested directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kv {

/// The clock expiry is measured on: monotonic, so wall-clock changes do not expire keys.
using Clock = std::chrono::steady_clock;

/// What the connection must do after a command's reply has been appended.
enum class After : unsigned char {
  proceed,  ///< go on with the next command
  close,    ///< flush the replies, then close (QUIT)
};

/// The key space and the command table.
class KvStore {
 public:
  /// Executes `args` (args[0] is the command name, any case) as of `now`, appending the RESP2
  /// reply to `reply`. Never throws on bad input: errors become "-ERR ..." replies.
  After execute(std::span<const std::string_view> args, std::string& reply, Clock::time_point now);

  /// Removes up to `budget` keys whose expiry has passed; returns how many were removed. Expired
  /// keys are also dropped lazily when touched, so this only bounds memory held by idle keys.
  std::size_t purge_expired(Clock::time_point now, std::size_t budget);

  /// Number of keys held, expired ones not yet purged included.
  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }

 private:
  // Heterogeneous lookup: find() with a string_view key allocates nothing.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct Entry {
    std::string value;
    Clock::time_point expires = Clock::time_point::max();  // max: no expiry
  };
  struct Deadline {
    Clock::time_point at;
    std::string key;
    bool operator>(const Deadline& o) const noexcept { return at > o.at; }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

  Entry* find_live(std::string_view key, Clock::time_point now);
  void set(std::string_view key, std::string_view value, Clock::time_point expires);
  void cmd_set(std::span<const std::string_view> args, std::string& reply, Clock::time_point now);
  void cmd_incr_by(std::string_view key, long long delta, std::string& reply,
                   Clock::time_point now);
  void cmd_ttl(std::string_view key, std::string& reply, Clock::time_point now, bool millis);

  Map map_;
  // Expiry deadlines, earliest first. An entry may be stale (key rewritten or deleted since);
  // purge_expired checks the map before removing anything.
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
};

/// Appends a RESP2 bulk string.
void append_bulk(std::string& out, std::string_view s);
/// Appends a RESP2 integer.
void append_integer(std::string& out, long long n);
/// Appends a RESP2 error reply: "-" + text + CRLF (CR and LF in text are replaced by blanks).
void append_error(std::string& out, std::string_view text);

}  // namespace kv

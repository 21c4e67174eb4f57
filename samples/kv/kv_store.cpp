// Commands of the kv_server sample: see kv_store.hpp. Replies follow RESP2; the error texts are
// our own, in the spirit of what Redis clients expect (an "ERR" prefix and a short reason).
#include "samples/kv/kv_store.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace kv {
namespace {

using Args = std::span<const std::string_view>;

// Expiry times above this many milliseconds are refused: it keeps now + ttl far from the
// overflow of the clock's 64-bit nanosecond count (about 31 years is plenty for a sample).
constexpr long long max_expire_ms = 1'000'000'000'000LL;

// Upper-cases the command name into `buf` (names longer than the buffer match nothing).
std::string_view command_name(std::string_view raw, char (&buf)[16]) {
  if (raw.size() > sizeof buf) return {};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    buf[i] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return {buf, raw.size()};
}

void append_ok(std::string& out) { out.append("+OK\r\n"); }
void append_null(std::string& out) { out.append("$-1\r\n"); }

// "<kind><n>\r\n": an array's header (*), a bulk string's header ($) or an integer reply (:).
void append_number_line(std::string& out, char kind, long long n) {
  out.push_back(kind);
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;
  out.append(digits, end);
  out.append("\r\n");
}

void append_array_header(std::string& out, std::size_t n) {
  append_number_line(out, '*', static_cast<long long>(n));
}

// Appends an error that quotes the client's command name, bounded and sanitised.
void append_named_error(std::string& out, std::string_view before, std::string_view name,
                        std::string_view after) {
  std::string text;
  text.reserve(before.size() + after.size() + 64);
  text.append(before);
  text.append(name.substr(0, 64));
  text.append(after);
  append_error(out, text);
}

void wrong_arity(std::string& out, std::string_view name) {
  append_named_error(out, "ERR wrong number of arguments for '", name, "'");
}

// A 64-bit integer in canonical decimal form (what INCR accepts as a stored value and as an
// increment): optional '-', no '+', no leading zeros, no blanks.
bool parse_integer(std::string_view s, long long& out) {
  if (s.empty() || s.size() > 20) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  char back[24];
  const auto [end, ec2] = std::to_chars(back, back + sizeof back, out);
  (void)ec2;
  return std::string_view(back, static_cast<std::size_t>(end - back)) == s;
}

// Argument counts (command name included) of each command; max 0 means no upper bound.
struct Arity {
  std::string_view name;
  std::size_t min;
  std::size_t max;
};
constexpr Arity arities[] = {
    {"GET", 2, 2},      {"SET", 3, 0},     {"INCR", 2, 2},   {"DECR", 2, 2},    {"INCRBY", 3, 3},
    {"DECRBY", 3, 3},   {"DEL", 2, 0},     {"EXISTS", 2, 0}, {"MSET", 3, 0},    {"MGET", 2, 0},
    {"PING", 1, 2},     {"ECHO", 2, 2},    {"TTL", 2, 2},    {"PTTL", 2, 2},    {"DBSIZE", 1, 1},
    {"FLUSHALL", 1, 1}, {"FLUSHDB", 1, 1}, {"CONFIG", 3, 3}, {"COMMAND", 1, 0}, {"QUIT", 1, 1},
};

bool is_known(std::string_view name) {
  return std::any_of(std::begin(arities), std::end(arities),
                     [&](const Arity& a) { return a.name == name; });
}

bool arity_ok(std::string_view name, std::size_t argc) {
  if (name == "MSET" && argc % 2 == 0) return false;  // keys and values come in pairs
  for (const Arity& a : arities) {
    if (a.name == name) return argc >= a.min && (a.max == 0 || argc <= a.max);
  }
  return false;
}

bool is_cmd(std::string_view arg, std::string_view upper) {
  char buf[16];
  return command_name(arg, buf) == upper;
}

}  // namespace

void append_bulk(std::string& out, std::string_view s) {
  append_number_line(out, '$', static_cast<long long>(s.size()));
  out.append(s);
  out.append("\r\n");
}

void append_integer(std::string& out, long long n) { append_number_line(out, ':', n); }

void append_error(std::string& out, std::string_view text) {
  out.push_back('-');
  const std::size_t at = out.size();
  out.append(text);
  // A CR or LF inside would end the reply early and desynchronise the client.
  std::replace_if(
      out.begin() + static_cast<std::ptrdiff_t>(at), out.end(),
      [](char c) { return c == '\r' || c == '\n'; }, ' ');
  out.append("\r\n");
}

KvStore::Entry* KvStore::find_live(std::string_view key, Clock::time_point now) {
  const auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  if (it->second.expires <= now) {
    map_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void KvStore::set(std::string_view key, std::string_view value, Clock::time_point expires) {
  auto it = map_.find(key);
  if (it == map_.end()) it = map_.emplace(std::string(key), Entry{}).first;
  it->second.value.assign(value);  // reuses the old value's capacity on overwrite
  it->second.expires = expires;
  if (expires != Clock::time_point::max()) deadlines_.push({expires, std::string(key)});
}

std::size_t KvStore::purge_expired(Clock::time_point now, std::size_t budget) {
  std::size_t removed = 0;
  while (budget > 0 && !deadlines_.empty() && deadlines_.top().at <= now) {
    const auto it = map_.find(deadlines_.top().key);
    // Only remove the key if this deadline is still its deadline and has passed.
    if (it != map_.end() && it->second.expires <= now) {
      map_.erase(it);
      ++removed;
    }
    deadlines_.pop();
    --budget;
  }
  return removed;
}

void KvStore::cmd_set(Args args, std::string& reply, Clock::time_point now) {
  Clock::time_point expires = Clock::time_point::max();
  bool nx = false;
  bool xx = false;
  bool keep_ttl = false;
  bool has_expiry = false;
  for (std::size_t i = 3; i < args.size(); ++i) {
    const bool ex = is_cmd(args[i], "EX");
    const bool px = is_cmd(args[i], "PX");
    if ((ex || px) && i + 1 < args.size() && !has_expiry && !keep_ttl) {
      long long n = 0;
      if (!parse_integer(args[i + 1], n) || n <= 0 ||
          n > (ex ? max_expire_ms / 1000 : max_expire_ms)) {
        append_error(reply, "ERR invalid expire time for 'set'");
        return;
      }
      expires = now + std::chrono::milliseconds(ex ? n * 1000 : n);
      has_expiry = true;
      ++i;
    } else if (is_cmd(args[i], "NX") && !xx) {
      nx = true;
    } else if (is_cmd(args[i], "XX") && !nx) {
      xx = true;
    } else if (is_cmd(args[i], "KEEPTTL") && !has_expiry) {
      keep_ttl = true;
    } else {
      append_error(reply, "ERR syntax error");
      return;
    }
  }
  Entry* existing = find_live(args[1], now);
  if ((nx && existing != nullptr) || (xx && existing == nullptr)) {
    append_null(reply);
    return;
  }
  if (keep_ttl && existing != nullptr) expires = existing->expires;
  set(args[1], args[2], expires);
  append_ok(reply);
}

void KvStore::cmd_incr_by(std::string_view key, long long delta, std::string& reply,
                          Clock::time_point now) {
  Entry* e = find_live(key, now);
  long long value = 0;
  if (e != nullptr && !parse_integer(e->value, value)) {
    append_error(reply, "ERR value is not a 64-bit integer");
    return;
  }
  long long result = 0;
  if (__builtin_add_overflow(value, delta, &result)) {
    append_error(reply, "ERR increment or decrement would overflow");
    return;
  }
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, result);
  (void)ec;
  const std::string_view text(digits, static_cast<std::size_t>(end - digits));
  if (e != nullptr) {
    e->value.assign(text);  // the key keeps its expiry, as in Redis
  } else {
    set(key, text, Clock::time_point::max());
  }
  append_integer(reply, result);
}

void KvStore::cmd_ttl(std::string_view key, std::string& reply, Clock::time_point now,
                      bool millis) {
  const Entry* e = find_live(key, now);
  if (e == nullptr) return append_integer(reply, -2);
  if (e->expires == Clock::time_point::max()) return append_integer(reply, -1);
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(e->expires - now).count();
  append_integer(reply, millis ? left : (left + 999) / 1000);
}

After KvStore::execute(Args args, std::string& reply, Clock::time_point now) {
  if (args.empty()) return After::proceed;
  char buf[16];
  const std::string_view name = command_name(args[0], buf);
  const std::size_t argc = args.size();
  if (!arity_ok(name, argc)) {
    if (is_known(name)) {
      wrong_arity(reply, args[0]);
    } else {
      append_named_error(reply, "ERR unknown command '", args[0], "'");
    }
    return After::proceed;
  }

  if (name == "GET") {
    const Entry* e = find_live(args[1], now);
    if (e == nullptr) {
      append_null(reply);
    } else {
      append_bulk(reply, e->value);
    }
  } else if (name == "SET") {
    cmd_set(args, reply, now);
  } else if (name == "INCR" || name == "DECR") {
    cmd_incr_by(args[1], name == "INCR" ? 1 : -1, reply, now);
  } else if (name == "INCRBY" || name == "DECRBY") {
    long long delta = 0;
    if (!parse_integer(args[2], delta) || (name == "DECRBY" && delta == INT64_MIN)) {
      append_error(reply, "ERR value is not a 64-bit integer");
    } else {
      cmd_incr_by(args[1], name == "INCRBY" ? delta : -delta, reply, now);
    }
  } else if (name == "DEL" || name == "EXISTS") {
    long long n = 0;
    for (std::size_t i = 1; i < argc; ++i) {
      if (find_live(args[i], now) == nullptr) continue;
      ++n;
      if (name == "DEL") map_.erase(map_.find(args[i]));
    }
    append_integer(reply, n);
  } else if (name == "MSET") {
    for (std::size_t i = 1; i < argc; i += 2) set(args[i], args[i + 1], Clock::time_point::max());
    append_ok(reply);
  } else if (name == "MGET") {
    append_array_header(reply, argc - 1);
    for (std::size_t i = 1; i < argc; ++i) {
      const Entry* e = find_live(args[i], now);
      if (e == nullptr) {
        append_null(reply);
      } else {
        append_bulk(reply, e->value);
      }
    }
  } else if (name == "PING") {
    if (argc == 2) {
      append_bulk(reply, args[1]);
    } else {
      reply.append("+PONG\r\n");
    }
  } else if (name == "ECHO") {
    append_bulk(reply, args[1]);
  } else if (name == "TTL" || name == "PTTL") {
    cmd_ttl(args[1], reply, now, name == "PTTL");
  } else if (name == "DBSIZE") {
    append_integer(reply, static_cast<long long>(map_.size()));
  } else if (name == "FLUSHALL" || name == "FLUSHDB") {
    map_.clear();
    deadlines_ = {};
    append_ok(reply);
  } else if (name == "CONFIG" && is_cmd(args[1], "GET")) {
    // redis-benchmark asks for "save" and "appendonly" before it starts; answer like a server
    // that persists nothing.
    if (args[2] == "save" || args[2] == "appendonly") {
      append_array_header(reply, 2);
      append_bulk(reply, args[2]);
      append_bulk(reply, args[2] == "save" ? "" : "no");
    } else {
      append_array_header(reply, 0);
    }
  } else if (name == "COMMAND") {
    append_array_header(reply, 0);  // redis-cli asks when interactive; we describe nothing
  } else if (name == "QUIT") {
    append_ok(reply);
    return After::close;
  } else {
    append_error(reply, "ERR syntax error");  // CONFIG with a subcommand other than GET
  }
  return After::proceed;
}

}  // namespace kv

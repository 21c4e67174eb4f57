// The sample programs' command-line parser: one table of options per program, each flag parsed
// and range-checked the same way everywhere, `--help` printing the table, and a clear one-line
// error plus the usage (exit status 2) for anything else. Flags take their value as the next
// argument or after '=' (`--port 0`, `--port=0`).
//
//   sample::ServerArgs args{.port = 7000};
//   sample::ArgParser parser("echo_server", "Echoes every byte back to its sender.");
//   sample::add_server_flags(parser, args);  // --port --backend --threads --stats
//   parser.integer("--max-fds", max_fds, 1, 1 << 20, "N", "lower RLIMIT_NOFILE to N");
//   if (auto status = parser.parse(argc, argv)) return *status;
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reactor/reactor.hpp"

namespace sample {

/// Builds a program's option table and parses argv against it.
class ArgParser {
 public:
  /// `program` names the program in messages; `summary` is the first line of --help.
  ArgParser(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {}

  /// `name N`: an integer in [min, max], stored in `out` (any integer type that holds the range).
  template <class Int>
  ArgParser& integer(std::string name, Int& out, long long min, long long max, std::string meta,
                     std::string help) {
    auto set = [&out, min, max](std::string_view value) -> std::string {
      long long v = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < min ||
          v > max) {
        return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
      }
      out = static_cast<Int>(v);
      return {};
    };
    return add(std::move(name), std::move(meta), std::move(help), set);
  }

  /// `name TEXT`: any non-empty text.
  ArgParser& text(std::string name, std::string& out, std::string meta, std::string help) {
    auto set = [&out](std::string_view value) -> std::string {
      if (value.empty()) return "expected a non-empty value";
      out = value;
      return {};
    };
    return add(std::move(name), std::move(meta), std::move(help), set);
  }

  /// `name WORD`: one of `choices`.
  ArgParser& choice(std::string name, std::string& out, std::vector<std::string> choices,
                    std::string help) {
    std::string meta;
    for (const auto& c : choices) meta += (meta.empty() ? "" : "|") + c;
    auto set = [&out, choices, meta](std::string_view value) -> std::string {
      for (const auto& c : choices) {
        if (value == c) {
          out = c;
          return {};
        }
      }
      return "expected one of " + meta;
    };
    return add(std::move(name), meta, std::move(help), set);
  }

  /// `--backend NAME`: a demultiplexer name as reactor::parse_backend reads it.
  ArgParser& backend(reactor::Backend& out) {
    auto set = [&out](std::string_view value) -> std::string {
      if (reactor::parse_backend(value, out)) {
        return "expected one of select, poll, epoll, io_uring, kqueue, best";
      }
      return {};
    };
    return add("--backend", "NAME", "demultiplexer: select|poll|epoll|io_uring|kqueue|best", set);
  }

  /// `name` alone (no value): sets `out` to true.
  ArgParser& flag(std::string name, bool& out, std::string help) {
    options_.push_back({std::move(name), {}, std::move(help), false, [&out](std::string_view) {
                          out = true;
                          return std::string();
                        }});
    return *this;
  }

  /// Parses argv[1..argc). Returns nullopt when the program should go on; otherwise the exit
  /// status main should return: 0 after --help (usage on stdout), 2 after an error (the error
  /// and the usage on stderr).
  [[nodiscard]] std::optional<int> parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_help(stdout);
        return 0;
      }
      std::optional<std::string_view> inline_value;
      if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
      const Option* option = find(arg);
      if (option == nullptr) return fail("unknown option '" + std::string(argv[i]) + "'");
      if (!option->takes_value) {
        if (inline_value) return fail(option->name + " takes no value");
        (void)option->set({});
        continue;
      }
      std::string_view value;
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return fail(option->name + " needs a value (" + option->meta + ")");
      }
      if (std::string error = option->set(value); !error.empty()) {
        return fail(option->name + ": " + error + ", got '" + std::string(value) + "'");
      }
    }
    return std::nullopt;
  }

  /// The one-line synopsis: "usage: NAME [--port N] ...".
  [[nodiscard]] std::string usage() const {
    std::string out = "usage: " + program_;
    for (const auto& o : options_) {
      out += " [" + o.name + (o.takes_value ? " " + o.meta : "") + "]";
    }
    return out;
  }

  /// The synopsis, the summary and one line per option.
  void print_help(std::FILE* to) const {
    std::fprintf(to, "%s\n%s\n", usage().c_str(), summary_.c_str());
    for (const auto& o : options_) {
      const std::string left = o.name + (o.takes_value ? " " + o.meta : "");
      std::fprintf(to, "  %-22s %s\n", left.c_str(), o.help.c_str());
    }
    std::fprintf(to, "  %-22s %s\n", "--help", "print this text and exit");
  }

 private:
  struct Option {
    std::string name;
    std::string meta;
    std::string help;
    bool takes_value = true;
    std::function<std::string(std::string_view)> set;  // returns an error text, empty if fine
  };

  template <class Set>
  ArgParser& add(std::string name, std::string meta, std::string help, Set set) {
    options_.push_back({std::move(name), std::move(meta), std::move(help), true, std::move(set)});
    return *this;
  }
  [[nodiscard]] const Option* find(std::string_view name) const {
    for (const auto& o : options_) {
      if (o.name == name) return &o;
    }
    return nullptr;
  }
  [[nodiscard]] int fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n%s\n", program_.c_str(), message.c_str(), usage().c_str());
    return 2;
  }

  std::string program_;
  std::string summary_;
  std::vector<Option> options_;
};

/// The flags every sample server takes.
struct ServerArgs {
  /// --port: 127.0.0.1 port to listen on (0: any free port; the banner says which).
  std::uint16_t port = 0;
  /// --backend: the demultiplexer.
  reactor::Backend backend = reactor::Backend::best;
  /// --threads: 1 runs one Reactor on the main thread; N > 1 a ReactorPool of N reactors.
  std::size_t threads = 1;
  /// --stats: print every reactor's statistics at exit (SIGUSR1 prints them at any time).
  bool stats = false;
};

/// Most threads a sample accepts (far more than any machine it runs on needs).
inline constexpr long long max_threads = 256;

/// Adds --port, --backend, --threads and --stats, reading into `args` (whose port is the default).
inline void add_server_flags(ArgParser& parser, ServerArgs& args) {
  parser
      .integer(
          "--port", args.port, 0, 65535, "N",
          "listen on 127.0.0.1:N; 0 picks a free port (default " + std::to_string(args.port) + ")")
      .backend(args.backend)
      .integer("--threads", args.threads, 1, max_threads, "N",
               "event-loop threads, one reactor each (default 1: one reactor, no extra thread)")
      .flag("--stats", args.stats, "print every reactor's statistics at exit (SIGUSR1: any time)");
}

/// The load both echo clients generate: N connections, each sending M messages of S bytes.
struct ClientArgs {
  long port = 7000;  // on 127.0.0.1 unless a client also takes --host
  long connections = 10;
  long messages = 100;
  long size = 1024;
};

/// Adds --port, --connections, --messages and --size, reading into `args` (whose values are the
/// defaults).
inline void add_client_flags(ArgParser& parser, ClientArgs& args) {
  const auto fallback = [](long value) { return " (default " + std::to_string(value) + ")"; };
  parser.integer("--port", args.port, 1, 65535, "N", "server port" + fallback(args.port))
      .integer("--connections", args.connections, 1, 1000000, "N",
               "connections" + fallback(args.connections))
      .integer("--messages", args.messages, 0, 1000000000, "M",
               "messages per connection" + fallback(args.messages))
      .integer("--size", args.size, 1, 64 << 20, "BYTES",
               "bytes per message" + fallback(args.size));
}

/// The banner's thread part: empty for one thread (the banner is then exactly what it was before
/// --threads existed, which scripts and tests match), else " with N threads".
inline std::string threads_suffix(std::size_t threads) {
  return threads == 1 ? std::string() : " with " + std::to_string(threads) + " threads";
}

}  // namespace sample

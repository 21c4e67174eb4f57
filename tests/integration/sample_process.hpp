// Helpers for the sample servers' integration tests: the sample as a child process and the
// clients that talk to it come from tests/support (child_process.hpp, loopback_client.hpp); here
// are the ways each sample is run (backends, --threads, --model tp) and what its output is read
// with.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "loopback_client.hpp"

namespace sample_test {

using namespace child;
using namespace loopback;

/// The backends every sample is tested on.
inline const std::vector<std::string> backends = {"select", "poll", "epoll"};

/// One way to run a sample server: a backend and a thread count (--threads; 1 is the default,
/// a single Reactor on the main thread, and is then not passed at all).
struct ServerConfig {
  std::string backend;
  int threads = 1;
  /// --model tp: one ThreadPoolReactor served by `threads` threads (samples that offer it).
  bool thread_pool = false;

  /// The arguments after --backend: {"--threads", "N"} for N > 1 (and "--model tp"), else none.
  [[nodiscard]] std::vector<std::string> extra_args() const {
    std::vector<std::string> out;
    if (threads != 1 || thread_pool) out = {"--threads", std::to_string(threads)};
    if (thread_pool) out.insert(out.end(), {"--model", "tp"});
    return out;
  }
  /// What the banner adds after "(backend B)": nothing for one thread, else " with N threads"
  /// (and " on one thread-pool reactor").
  [[nodiscard]] std::string banner_suffix() const {
    if (thread_pool)
      return " with " + std::to_string(threads) + " threads on one thread-pool reactor";
    return threads == 1 ? std::string() : " with " + std::to_string(threads) + " threads";
  }
  /// How many reactors the server's --stats dump lists.
  [[nodiscard]] int reactors() const { return thread_pool ? 1 : threads; }
};

/// Every backend with each of `thread_counts`.
inline std::vector<ServerConfig> server_configs(std::initializer_list<int> thread_counts) {
  std::vector<ServerConfig> out;
  for (int t : thread_counts) {
    for (const auto& b : backends) out.push_back({b, t});
  }
  return out;
}

/// Every backend on one thread-pool reactor with `threads` threads (--model tp).
inline std::vector<ServerConfig> thread_pool_configs(int threads) {
  std::vector<ServerConfig> out;
  for (const auto& b : backends) out.push_back({b, threads, true});
  return out;
}

/// Test-name suffix: "epoll" for one thread (the names the tests had before --threads), else
/// "epoll_2threads", or "epoll_tp_2threads" on the thread-pool reactor.
inline std::string config_name(const ServerConfig& c) {
  if (c.thread_pool) return c.backend + "_tp_" + std::to_string(c.threads) + "threads";
  return c.threads == 1 ? c.backend : c.backend + "_" + std::to_string(c.threads) + "threads";
}

/// Occurrences of `needle` in `text`.
inline int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

/// A statistics dump split by reactor. With one reactor the whole text is block 0; with N, the
/// text after the label "[reactor I/N]" up to the next label is block I (the last one of each
/// index wins, so a dump at exit after a SIGUSR1 dump is what is returned).
inline std::vector<std::string> reactor_blocks(const std::string& text, int reactors) {
  if (reactors == 1) return {text};
  std::vector<std::string> blocks(static_cast<std::size_t>(reactors));
  const std::string suffix = "/" + std::to_string(reactors) + "]\n";
  for (auto at = text.find("[reactor "); at != std::string::npos;) {
    const auto close = text.find(suffix, at);
    if (close == std::string::npos) break;
    const int index = std::atoi(text.c_str() + at + 9);
    const auto body = close + suffix.size();
    const auto next = text.find("[reactor ", body);
    if (index >= 0 && index < reactors) {
      blocks[static_cast<std::size_t>(index)] =
          text.substr(body, (next == std::string::npos ? text.size() : next) - body);
    }
    at = next;
  }
  return blocks;
}

}  // namespace sample_test

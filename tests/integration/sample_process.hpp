// Helpers for the sample servers' integration tests: the sample as a child process and the
// clients that talk to it come from tests/support (child_process.hpp, loopback_client.hpp); here
// are the ways each sample is run (backends, --threads, --model tp) and what its output is read
// with.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
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

/// Fixture of the tests of one sample server, run as the configuration (a ServerConfig) or on the
/// backend (a name) the test is instantiated with.
template <class Param>
class SampleServerTest : public ::testing::TestWithParam<Param> {
 protected:
  /// `variable`: the environment variable meson passes the server's path in. `start_in_setup`:
  /// SetUp starts the server (and checks its banner); else each test calls start() itself.
  explicit SampleServerTest(const char* variable, bool start_in_setup = true)
      : variable_(variable), start_in_setup_(start_in_setup) {}
  void SetUp() override {
    ASSERT_FALSE(env(variable_).empty()) << "meson sets " << variable_ << " to the binary";
    if (!start_in_setup_) return;
    start();
    ASSERT_NE(server_->port(), 0) << "no banner";
  }
  [[nodiscard]] const std::string& backend() const {
    if constexpr (std::is_same_v<Param, ServerConfig>) {
      return this->GetParam().backend;
    } else {
      return this->GetParam();
    }
  }
  /// Starts the server with the configuration's arguments, then `extra`; it lives until the
  /// test ends (or the next start()).
  ServerProcess& start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args;
    if constexpr (std::is_same_v<Param, ServerConfig>) args = this->GetParam().extra_args();
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(env(variable_), backend(), args);
    return *server_;
  }
  /// A new connection to the server; the test fails if there is none.
  [[nodiscard]] Client connect() const {
    Client c(server_->port());
    EXPECT_TRUE(c.connected()) << "cannot connect to port " << server_->port();
    return c;
  }

  std::unique_ptr<ServerProcess> server_;

 private:
  const char* variable_;
  bool start_in_setup_;
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

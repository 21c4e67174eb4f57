// For the echo and chat integration tests: a sample server child started with any extra
// arguments, its banner parsed for the port, plus /proc readings (CPU time, resident memory)
// and non-blocking raw clients. Built on sample_process.hpp's spawn and wait helpers.
#pragma once

#include <sys/resource.h>

#include <fstream>
#include <sstream>

#include "sample_process.hpp"

namespace sample_test {

/// A sample server started as `path --port 0 --backend B extra...`; killed and reaped on exit.
class SampleServer {
 public:
  SampleServer(const std::string& path, const std::string& backend,
               const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {path, "--port", "0", "--backend", backend};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = spawn(argv, out_fd_, nullptr, false);
    if (pid_ < 0) return;
    pidfd_ = open_pidfd(pid_);
    const auto deadline = Clock::now() + 10s;
    while (banner_.find('\n') == std::string::npos) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0) return;
      char buf[256];
      const ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) return;
      banner_.append(buf, static_cast<std::size_t>(n));
    }
    banner_.resize(banner_.find('\n'));
    const auto colon = banner_.rfind(':');
    if (colon != std::string::npos) port_ = std::atoi(banner_.c_str() + colon + 1);
  }
  ~SampleServer() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      (void)wait_child(pid_, -1, 0ms);
    }
    if (pidfd_ >= 0) ::close(pidfd_);
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  SampleServer(const SampleServer&) = delete;
  SampleServer& operator=(const SampleServer&) = delete;

  [[nodiscard]] const std::string& banner() const { return banner_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// The read end of the child's stdout (after the banner line).
  [[nodiscard]] int output_fd() const { return out_fd_; }
  /// True while the child has not exited.
  [[nodiscard]] bool running() const {
    if (pid_ <= 0 || reaped_) return false;
    pollfd p{pidfd_, POLLIN, 0};
    return pidfd_ < 0 || ::poll(&p, 1, 0) == 0;
  }
  /// Sends `signum`, waits (bounded) for the exit; the exit code, or -1.
  int stop(int signum, std::chrono::milliseconds limit = 10s) {
    if (pid_ <= 0 || reaped_) return -1;
    ::kill(pid_, signum);
    auto status = wait_child(pid_, pidfd_, limit);
    if (!status) return -1;
    reaped_ = true;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  /// User + system CPU time of the child so far, in clock ticks.
  [[nodiscard]] long cpu_ticks() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
    std::string all((std::istreambuf_iterator<char>(f)), {});
    const auto close = all.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(all.substr(close + 2));
    std::string field;
    long utime = 0;
    long stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::atol(field.c_str());
      if (i == 15) stime = std::atol(field.c_str());
    }
    return utime + stime;
  }
  /// Resident set size of the child in KiB (VmRSS), or -1.
  [[nodiscard]] long rss_kib() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  std::string banner_;
  int port_ = 0;
  bool reaped_ = false;
};

/// A non-blocking TCP socket connecting to 127.0.0.1:port (-1 on failure).
inline int connect_nonblocking(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Raises this process's descriptor limit to its hard limit (1,000 clients need it).
inline void raise_fd_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
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

/// Threads of process `pid` (entries of /proc/PID/task), or -1.
inline int thread_count(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

/// Deterministic pseudo-random bytes.
inline std::string random_payload(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761U + 12345;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

}  // namespace sample_test

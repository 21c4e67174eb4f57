// Helpers for the fault-injection and soak suites: run a sample server as a child process (with
// an optional wrapper such as prlimit) and read its banner, sample the child's descriptor count,
// resident memory and CPU time from /proc, and open loopback TCP connections. Every wait is
// bounded and waits on a condition (a pipe, a pidfd, a socket), never on a bare sleep.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace faults {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// True under ASan or TSan, where servers built the same way run several times slower and the
/// tests shorten their loads accordingly (they say so in their output).
inline constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

/// Milliseconds left until `deadline`, at least 0 (for poll()).
inline int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

/// The environment variable `name`, or empty.
inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

/// Descriptors the process `pid` holds now (-1 when /proc cannot tell).
inline int fd_count(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

/// Resident memory of `pid` in KiB (VmRSS), or -1.
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

/// User + system CPU time `pid` has used, in clock ticks (utime + stime of /proc/pid/stat).
inline long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close_paren = stat.rfind(')');  // the command name may hold blanks
  if (close_paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close_paren + 2));
  std::string field;
  long utime = -1;
  long stime = -1;
  // After ")": state is field 3 of the man page; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::atol(field.c_str());
    if (i == 15) stime = std::atol(field.c_str());
  }
  return utime < 0 || stime < 0 ? -1 : utime + stime;
}

/// Nanoseconds `pid` has been runnable: on a CPU plus waiting for one (/proc/pid/schedstat), or
/// -1. Unlike CPU time alone this shows a spinning process even on a machine so loaded that the
/// spinner rarely gets a CPU: a process blocked in the kernel accrues neither.
inline long long runnable_ns(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  long long on_cpu = -1;
  long long waiting = -1;
  if (!(in >> on_cpu >> waiting)) return -1;
  return on_cpu + waiting;
}

/// A server child process: `argv` (looked up in PATH when it has no slash) with stdout on a
/// pipe; the banner "<name> listening on 127.0.0.1:<port> (backend <name>)" gives the port.
/// Killed and reaped on destruction.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    out_fd_ = out[0];
    if (pid_ <= 0) return;
#ifdef SYS_pidfd_open
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
#endif
    const auto deadline = Clock::now() + 20s;
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
    if (colon != std::string::npos && banner_.find(" listening on ") != std::string::npos) {
      port_ = std::atoi(banner_.c_str() + colon + 1);
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      (void)::waitpid(pid_, &status, 0);
    }
    if (pidfd_ >= 0) ::close(pidfd_);
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] const std::string& banner() const { return banner_; }
  /// True while the child has not exited.
  [[nodiscard]] bool running() const {
    if (pid_ <= 0 || reaped_) return false;
    if (pidfd_ < 0) return ::kill(pid_, 0) == 0;
    pollfd p{pidfd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  /// SIGTERM, then waits (bounded) for the exit; the exit code, or -1.
  int stop(std::chrono::milliseconds limit = 10s) {
    if (pid_ <= 0 || reaped_) return -1;
    ::kill(pid_, SIGTERM);
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return -1;
    }
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return -1;
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  std::string banner_;
  int port_ = 0;
  bool reaped_ = false;
};

/// A blocking TCP socket connected to 127.0.0.1:`port`, or an invalid one (fd() < 0).
class Conn {
 public:
  Conn() = default;
  explicit Conn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) close();
  }
  ~Conn() { close(); }
  Conn(Conn&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Conn& operator=(Conn&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] bool ok() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes with SO_LINGER {on, 0}: the kernel sends RST instead of FIN.
  void reset() {
    if (fd_ < 0) return;
    const linger l{1, 0};
    (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  /// Sends all of `bytes`; false on error.
  bool send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Receives until `want` bytes came, EOF, an error, or `limit` passed.
  std::string receive(std::size_t want, std::chrono::milliseconds limit = 10s) {
    std::string got;
    const auto deadline = Clock::now() + limit;
    char buf[65536];
    while (got.size() < want) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, want - got.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  /// Receives until the peer closes (EOF or reset) or `limit` passes; eof() tells which.
  std::string receive_all(std::chrono::milliseconds limit = 10s) {
    return receive(std::string::npos, limit);
  }
  /// True once a receive saw the end of the stream (EOF or a reset).
  [[nodiscard]] bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool eof_ = false;
};

/// One echo round trip of `message` on `c`; true when exactly it came back in time.
inline bool echoes(Conn& c, const std::string& message, std::chrono::milliseconds limit = 10s) {
  return c.ok() && c.send_all(message) && c.receive(message.size(), limit) == message;
}

/// Polls `sample()` until `done(value)` holds or `limit` passes; returns the last value. A bounded
/// wait on a condition the server exposes only through /proc (no event to wait on).
template <class Sample, class Done>
auto wait_for(Sample sample, Done done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  auto value = sample();
  while (!done(value) && Clock::now() < deadline) {
    ::poll(nullptr, 0, 20);  // re-sample every 20 ms
    value = sample();
  }
  return value;
}

}  // namespace faults

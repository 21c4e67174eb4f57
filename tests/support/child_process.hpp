// Child processes for the tests that run whole programs (the sample servers and clients): start a
// server with its stdout on a pipe and read its banner, stop it with a signal and read its exit
// status, run a client to the end with a time limit, and read what /proc says about a process.
// Every wait is bounded and waits on a condition (a pipe, a pidfd), never on a bare sleep.
// Header-only and independent of the library, so a test of a binary does not link the code under
// test.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace child {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// True when this build runs under ASan or TSan: the programs under test are built the same way
/// and run several times slower, so the tests shorten their loads (and say so).
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

/// The environment variable `name`, or empty (meson passes the binaries' paths this way).
inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

/// Milliseconds left until `deadline`, at least 0 (for poll()).
inline int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

/// Appends what `fd` gives to `out` until `done(out)` holds, EOF (then *eof is set), an error or
/// `deadline`.
template <class Done>
void read_until(int fd, std::string& out, Clock::time_point deadline, Done done,
                bool* eof = nullptr) {
  char buf[16384];
  while (!done(out)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) return;  // timed out
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (eof != nullptr) *eof = true;
      return;
    }
    out.append(buf, static_cast<std::size_t>(got));
  }
}

/// Reads `fd` until EOF or `deadline`; returns what was read.
inline std::string read_until_eof(int fd, Clock::time_point deadline, bool* eof = nullptr) {
  std::string out;
  read_until(
      fd, out, deadline, [](const std::string&) { return false; }, eof);
  return out;
}

/// A pidfd for `pid` (readable once it exits), or -1 where the kernel has none.
inline int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

/// Waits for the child behind `pidfd` to exit; returns its wait status, or nullopt on timeout.
inline std::optional<int> wait_child(pid_t pid, int pidfd, std::chrono::milliseconds limit) {
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return std::nullopt;
  }
  int status = 0;
  // With a pidfd the child has exited and this returns at once; without one it blocks, which
  // is acceptable only because the caller has already sent SIGKILL in that case.
  if (::waitpid(pid, &status, 0) != pid) return std::nullopt;
  return status;
}

/// Spawns `argv` (looked up in PATH when argv[0] has no slash) with stdout (and stderr when
/// `merge_stderr`) on a pipe and stdin from /dev/null, or from a pipe when `in_fd` is given.
/// Returns the pid, or -1.
inline pid_t spawn(const std::vector<std::string>& argv, int& out_fd, int* in_fd,
                   bool merge_stderr) {
  int out[2];
  int in[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0) return -1;
  if (in_fd != nullptr && ::pipe2(in, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in_fd != nullptr) {
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (merge_stderr) posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  out_fd = out[0];
  if (in_fd != nullptr) {
    ::close(in[0]);
    *in_fd = in[1];
  }
  return pid;
}

/// What a client program did.
struct RunResult {
  int exit_code = -1;  // -1 when it did not exit normally in time
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved
};

/// Runs `argv` (looked up in PATH) with `input` on its stdin; kills it after `limit`.
inline RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds limit,
                     const std::string& input = {}) {
  RunResult r;
  int out_fd = -1;
  int in_fd = -1;
  const pid_t pid = spawn(argv, out_fd, &in_fd, true);
  if (pid < 0) {
    r.output = "cannot start " + argv[0];
    return r;
  }
  const int pidfd = open_pidfd(pid);
  const auto deadline = Clock::now() + limit;
  // Inputs here are small (well under a pipe's capacity), so one write cannot block.
  if (!input.empty()) (void)!::write(in_fd, input.data(), input.size());
  ::close(in_fd);
  bool eof = false;
  r.output = read_until_eof(out_fd, deadline, &eof);
  ::close(out_fd);
  auto status = eof ? wait_child(pid, pidfd, std::chrono::milliseconds(ms_left(deadline) + 1000))
                    : std::nullopt;
  if (!status) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
    status = wait_child(pid, -1, 0ms);
  }
  if (pidfd >= 0) ::close(pidfd);
  if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
  return r;
}

// ---- What /proc says about a process ---------------------------------------------------------

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

/// The number after `key` in /proc/<pid>/status ("VmRSS:", "Threads:"), or -1.
inline long status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

/// Resident memory of `pid` in KiB (VmRSS), or -1.
inline long rss_kib(pid_t pid) { return status_field(pid, "VmRSS:"); }

/// Threads of process `pid`, or -1.
inline int thread_count(pid_t pid) { return static_cast<int>(status_field(pid, "Threads:")); }

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

/// Polls `sample()` until `done(value)` holds or `limit` passes; returns the last value. A bounded
/// wait on a condition a process exposes only through /proc (no event to wait on).
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

// ---- A server child -----------------------------------------------------------------------------

/// A server running as a child process, stdout on a pipe; killed and reaped on destruction.
class ServerProcess {
 public:
  /// Starts `argv` (looked up in PATH when argv[0] has no slash) and reads its first line, the
  /// banner, for at most `banner_limit`. "<name> listening on 127.0.0.1:<port> (...)" gives the
  /// port; any other first line leaves port() at 0.
  explicit ServerProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds banner_limit = 20s) {
    pid_ = spawn(argv, out_fd_, nullptr, false);
    if (pid_ < 0) return;
    pidfd_ = open_pidfd(pid_);
    // One byte at a time, so that nothing after the banner is taken from the pipe: the test
    // reads the rest (statistics, messages) from output_fd().
    const auto deadline = Clock::now() + banner_limit;
    for (char c = 0;;) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0 || ::read(out_fd_, &c, 1) != 1) return;
      if (c == '\n') break;
      banner_.push_back(c);
    }
    const auto colon = banner_.rfind(':');
    if (colon != std::string::npos && banner_.find(" listening on ") != std::string::npos) {
      port_ = std::atoi(banner_.c_str() + colon + 1);
    }
  }
  /// A sample server on a free port: `path --port 0 --backend <backend> extra...`.
  ServerProcess(const std::string& path, const std::string& backend,
                const std::vector<std::string>& extra = {})
      : ServerProcess(sample_argv(path, backend, extra)) {}
  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      (void)wait_child(pid_, -1, 0ms);
    }
    if (pidfd_ >= 0) ::close(pidfd_);
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// The port from the banner, or 0.
  [[nodiscard]] int port() const { return port_; }
  /// The banner line (without its newline); empty when none came.
  [[nodiscard]] const std::string& banner() const { return banner_; }
  /// The read end of the child's stdout, after the banner line.
  [[nodiscard]] int output_fd() const { return out_fd_; }
  /// True while the child has not exited.
  [[nodiscard]] bool running() const {
    if (pid_ <= 0 || reaped_) return false;
    if (pidfd_ < 0) return ::kill(pid_, 0) == 0;
    pollfd p{pidfd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  /// Sends `signum` and waits (bounded) for the exit; the exit code, or -1 (killed by a signal,
  /// or still running after `limit`).
  int stop(int signum = SIGTERM, std::chrono::milliseconds limit = 10s) {
    if (pid_ <= 0 || reaped_) return -1;
    ::kill(pid_, signum);
    auto status = wait_child(pid_, pidfd_, limit);
    if (!status) return -1;
    reaped_ = true;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  /// User + system CPU time of the child so far, in clock ticks.
  [[nodiscard]] long cpu_ticks() const { return child::cpu_ticks(pid_); }
  /// Resident set size of the child in KiB, or -1.
  [[nodiscard]] long rss_kib() const { return child::rss_kib(pid_); }

 private:
  static std::vector<std::string> sample_argv(const std::string& path, const std::string& backend,
                                              const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {path, "--port", "0", "--backend", backend};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  std::string banner_;
  int port_ = 0;
  bool reaped_ = false;
};

}  // namespace child

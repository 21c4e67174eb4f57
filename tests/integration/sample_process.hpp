// Helpers for the sample servers' integration tests: start a sample as a child process and read
// its banner, run a real client program with a time limit, and talk raw TCP to 127.0.0.1. Every
// wait here is bounded and waits on a condition (a pipe, a pidfd, a socket), never on a sleep.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace sample_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// True when this build runs under ASan or TSan (the servers under test are built the same way
/// and run several times slower, so load runs are shortened).
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

/// Milliseconds left until `deadline` (at least 0), for poll().
inline int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

/// Reads `fd` until EOF or `deadline`; returns what was read.
inline std::string read_until_eof(int fd, Clock::time_point deadline, bool* eof = nullptr) {
  std::string out;
  char buf[16384];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, ms_left(deadline));
    if (n <= 0) break;  // timed out
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
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

inline int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

/// Spawns `argv` with stdout (and stderr when `merge_stderr`) on a pipe and stdin from
/// /dev/null or a pipe. Returns the pid, or -1.
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

/// A sample server running as a child process; killed and reaped on destruction.
class ServerProcess {
 public:
  /// Starts `path --port 0 --backend <backend> extra...` and reads its banner (bounded).
  ServerProcess(const std::string& path, const std::string& backend,
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

  /// The banner line (without its newline); empty when none came.
  [[nodiscard]] const std::string& banner() const { return banner_; }
  /// The port from the banner, or 0.
  [[nodiscard]] int port() const { return port_; }
  /// Sends `signum` and waits (bounded) for the exit; returns the exit code, -1 otherwise.
  int stop(int signum, std::chrono::milliseconds limit = 10s) {
    if (pid_ <= 0 || reaped_) return -1;
    ::kill(pid_, signum);
    auto status = wait_child(pid_, pidfd_, limit);
    if (!status) return -1;
    reaped_ = true;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  /// True while the child has not exited.
  [[nodiscard]] bool running() const {
    if (pid_ <= 0 || reaped_) return false;
    pollfd p{pidfd_, POLLIN, 0};
    return pidfd_ < 0 || ::poll(&p, 1, 0) == 0;
  }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  std::string banner_;
  int port_ = 0;
  bool reaped_ = false;
};

/// A blocking TCP connection to 127.0.0.1:port; every receive is bounded by a deadline.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  /// The socket (for a caller's own poll loop).
  [[nodiscard]] int fd() const { return fd_; }
  /// Sends all of `bytes`; false on error.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Receives until `done(received)` holds, EOF, or the time limit; returns what came.
  template <class Done>
  std::string receive_until(Done done, std::chrono::milliseconds limit = 10s) {
    std::string got;
    const auto deadline = Clock::now() + limit;
    char buf[65536];
    while (!done(got)) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  /// Receives until the peer closes (or the time limit); eof() tells which.
  std::string receive_all(std::chrono::milliseconds limit = 10s) {
    return receive_until([](const std::string&) { return false; }, limit);
  }
  /// True once a receive saw the peer's end of stream.
  [[nodiscard]] bool eof() const { return eof_; }
  /// Closes our sending side (the server reads EOF).
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

 private:
  int fd_ = -1;
  bool eof_ = false;
};

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

/// The environment variable `name`, or empty.
inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace sample_test

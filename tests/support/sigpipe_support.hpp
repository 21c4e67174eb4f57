// SIGPIPE tests: writable ends of every kind whose reader can be taken away, and a runner that
// puts a scenario in a forked child with SIGPIPE at its default disposition (terminate) and
// unblocked, as an application that never thought about SIGPIPE has it. A SIGPIPE the library
// lets through then kills the child, not the test binary, and comes back as an ordinary failure
// naming the signal; the other tests of the binary still run.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include "test_support.hpp"

namespace reactor::test {

/// The kinds of descriptor the stream APIs write to.
enum class EndKind { pipe, socketpair, tcp };

/// A non-blocking end to write to (`ours`) and cut(), after which writing to it fails with EPIPE
/// (and, without precautions, raises SIGPIPE).
struct WritableEnd {
  explicit WritableEnd(EndKind k) : kind(k) {
    if (kind == EndKind::pipe) {
      Pipe p;
      ours = std::move(p.w);
      other = std::move(p.r);
    } else if (kind == EndKind::socketpair) {
      SocketPair s;
      ours = std::move(s.a);
      other = std::move(s.b);
    } else {
      connect_loopback();
    }
    fd = ours.get();
  }
  /// Pipe and socket pair: the reading end is closed. TCP: our side is shut down for writing,
  /// the one deterministic EPIPE (a closed TCP peer answers the first write with a reset, and
  /// only a later write would fail).
  void cut() {
    if (kind == EndKind::tcp) {
      ::shutdown(fd, SHUT_WR);
    } else {
      other.reset();
    }
  }

  EndKind kind;
  UniqueFd ours;
  UniqueFd other;
  int fd = -1;  // ours's number, still known after `ours` was handed over

 private:
  void connect_loopback() {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    // Blocking connect: on loopback the handshake completes within the call.
    UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    other.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    ::fcntl(client.get(), F_SETFL, ::fcntl(client.get(), F_GETFL) | O_NONBLOCK);
    ours = std::move(client);
  }
};

/// For test names and messages.
inline const char* end_name(EndKind kind) {
  return kind == EndKind::pipe ? "pipe" : kind == EndKind::socketpair ? "socketpair" : "tcp";
}

/// Collects what a child scenario found wrong (gtest assertions cannot report from a child).
struct ChildChecks {
  std::string failures;
  /// Records `what` unless `ok`; returns `ok`.
  bool check(bool ok, const std::string& what) {
    if (!ok) failures += what + "\n";
    return ok;
  }
};

/// Forks; the child sets SIGPIPE to SIG_DFL and unblocks it, runs `scenario`, then checks that
/// the disposition is still SIG_DFL, that SIGPIPE is neither pending nor blocked (the library put
/// the thread's mask back), and exits. Success when the child exited 0 within `limit`.
inline ::testing::AssertionResult survives_default_sigpipe(
    const std::function<void(ChildChecks&)>& scenario,
    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ::testing::AssertionFailure() << "pipe2 failed";
  const pid_t pid = ::fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
  if (pid == 0) {
    ::close(fds[0]);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_only, nullptr);
    ChildChecks c;
    scenario(c);
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    c.check(now.sa_handler == SIG_DFL, "SIGPIPE's disposition is no longer SIG_DFL");
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    c.check(sigismember(&pending, SIGPIPE) == 0, "a SIGPIPE is left pending");
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    c.check(sigismember(&mask, SIGPIPE) == 0, "SIGPIPE is left blocked in the thread's mask");
    if (!c.failures.empty()) {
      [[maybe_unused]] auto n = ::write(fds[1], c.failures.data(), c.failures.size());
    }
    ::_exit(c.failures.empty() ? 0 : 1);  // no destructors: they belong to the parent
  }
  ::close(fds[1]);
  std::string report;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    char buf[512];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // the child is gone (or closed its end)
    report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return ::testing::AssertionFailure() << "the child scenario timed out";
  if (WIFSIGNALED(status)) {
    return ::testing::AssertionFailure() << "the child was killed by signal " << WTERMSIG(status)
                                         << " (" << ::strsignal(WTERMSIG(status)) << ")";
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return ::testing::AssertionFailure() << "the child scenario failed:\n" << report;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace reactor::test

// write_no_sigpipe, the write path StreamHandler and Stream share: EPIPE instead of SIGPIPE on
// every kind of descriptor, the thread's signal mask restored, SIGPIPE's disposition untouched,
// and a SIGPIPE the application itself has pending left for it. Each case runs in a child with
// SIGPIPE's default disposition (sigpipe_support.hpp).
#include "base/no_sigpipe.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sigpipe_support.hpp"

namespace reactor::test {
namespace {

// One write of "ab" + "cd" to `fd`; errno is kept for the caller.
ssize_t write_abcd(int fd, bool& is_socket) {
  char ab[] = "ab";
  char cd[] = "cd";
  iovec iov[2] = {{ab, 2}, {cd, 2}};
  return write_no_sigpipe(fd, iov, 2, is_socket);
}

// Reads `n` bytes from non-blocking `fd` into `out`, waiting at most 5 s for them.
bool run_until_read(int fd, std::string& out, std::size_t n) {
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    char buf[64];
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got <= 0) return false;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return true;
}

bool sigpipe_pending() {
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

bool sigpipe_blocked() {
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE) == 1;
}

void block_sigpipe(bool block) {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &pipe_only, nullptr);
}

TEST(NoSigpipe, GatherWritesToLiveEndsOfEveryKind) {
  for (EndKind kind : {EndKind::pipe, EndKind::socketpair, EndKind::tcp}) {
    WritableEnd end(kind);
    ASSERT_TRUE(end.ours.valid() && end.other.valid()) << end_name(kind);
    bool is_socket = true;  // a wrong guess for the pipe: it must find out
    EXPECT_EQ(write_abcd(end.fd, is_socket), 4) << end_name(kind);
    EXPECT_EQ(is_socket, kind != EndKind::pipe) << end_name(kind);
    std::string got;
    ASSERT_TRUE(run_until_read(end.other.get(), got, 4)) << end_name(kind);
    EXPECT_EQ(got, "abcd") << end_name(kind);
  }
}

TEST(NoSigpipe, WidowedEndOfEveryKindIsEpipeAndTheProcessSurvives) {
  for (EndKind kind : {EndKind::pipe, EndKind::socketpair, EndKind::tcp}) {
    const auto survived = survives_default_sigpipe([kind](ChildChecks& c) {
      WritableEnd end(kind);
      end.cut();
      bool is_socket = kind != EndKind::pipe;
      const ssize_t n = write_abcd(end.fd, is_socket);
      const int error = errno;
      c.check(n == -1 && error == EPIPE,
              "expected -1 / EPIPE, got " + std::to_string(n) + " / " + std::strerror(error));
    });
    EXPECT_TRUE(survived) << end_name(kind);
  }
}

// An application that blocks SIGPIPE (to sigwait for it, say) must not find one pending that the
// library's own write raised, and keeps its mask.
TEST(NoSigpipe, OwnSigpipeIsNotLeftPendingWhenTheApplicationBlocksIt) {
  const auto survived = survives_default_sigpipe([](ChildChecks& c) {
    block_sigpipe(true);
    Pipe p;
    p.r.reset();
    bool is_socket = false;
    c.check(write_abcd(p.w.get(), is_socket) == -1 && errno == EPIPE, "not EPIPE");
    c.check(!sigpipe_pending(), "the write's SIGPIPE is left pending");
    c.check(sigpipe_blocked(), "the application's mask lost SIGPIPE");
    block_sigpipe(false);
  });
  EXPECT_TRUE(survived);
}

// A SIGPIPE that was pending before the write belongs to the application: it stays pending.
TEST(NoSigpipe, ApplicationsPendingSigpipeIsLeftAlone) {
  const auto survived = survives_default_sigpipe([](ChildChecks& c) {
    block_sigpipe(true);
    ::pthread_kill(::pthread_self(), SIGPIPE);
    c.check(sigpipe_pending(), "setup: no SIGPIPE pending");
    Pipe p;
    p.r.reset();
    bool is_socket = false;
    c.check(write_abcd(p.w.get(), is_socket) == -1 && errno == EPIPE, "not EPIPE");
    c.check(sigpipe_pending(), "the application's pending SIGPIPE was consumed");
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    const timespec zero{};
    c.check(::sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE, "cannot take it back");
    block_sigpipe(false);
  });
  EXPECT_TRUE(survived);
}

}  // namespace
}  // namespace reactor::test

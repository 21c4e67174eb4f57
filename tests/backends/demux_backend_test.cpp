// Backend-level tests of the io_uring and kqueue demultiplexers, straight through the
// Demultiplexer interface: registration, level-triggered re-reporting, stale completions after
// remove and fd reuse, timeouts, many descriptors, and a reactor handler that reads one byte per
// callback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <pthread.h>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <set>
#include <thread>

#include "new_backends.hpp"
#include "test_support.hpp"

namespace reactor::test {
namespace {

using namespace std::chrono_literals;

EventMask events_of(const std::vector<ReadyEvent>& got, int fd) {
  EventMask out = EventMask::none;
  for (const ReadyEvent& e : got) {
    if (e.fd == fd) out |= e.events;
  }
  return out;
}

class DemuxBackend : public ::testing::TestWithParam<NewBackend> {
 protected:
  void SetUp() override {
    std::string why;
    demux_ = GetParam().make(why);
    if (!demux_) GTEST_SKIP() << GetParam().name << " skipped: " << why;
  }

  // Waits up to `limit` and returns what was reported (several waits if one returns nothing,
  // e.g. after EINTR or a stale completion).
  std::vector<ReadyEvent> wait_for(milliseconds limit, std::size_t span = 64) {
    std::vector<ReadyEvent> ready(span);
    const auto deadline = Clock::now() + limit;
    for (;;) {
      std::size_t n = 0;
      const auto left = std::max(std::chrono::nanoseconds::zero(),
                                 std::chrono::nanoseconds(deadline - Clock::now()));
      EXPECT_FALSE(demux_->wait(ready, left, n));
      if (n > 0 || Clock::now() >= deadline) return {ready.begin(), ready.begin() + n};
    }
  }

  // True when `fd` was reported with all of `bits` (over several waits) within five seconds.
  bool wait_until_seen(int fd, EventMask bits) {
    EventMask seen = EventMask::none;
    const auto deadline = Clock::now() + 5s;
    while (!has(seen, bits) && Clock::now() < deadline) seen |= events_of(wait_for(1s), fd);
    return has(seen, bits);
  }

  // What one zero-timeout wait reports.
  std::vector<ReadyEvent> poll_now() {
    std::vector<ReadyEvent> ready(64);
    std::size_t n = 0;
    EXPECT_FALSE(demux_->wait(ready, 0ns, n));
    return {ready.begin(), ready.begin() + n};
  }

  std::unique_ptr<Demultiplexer> demux_;
};

TEST_P(DemuxBackend, ReportsReadableOnlyAfterData) {
  Pipe p;
  ASSERT_FALSE(demux_->add(p.r.get(), EventMask::read));
  EXPECT_TRUE(poll_now().empty());
  ASSERT_TRUE(put(p.w.get(), "x"));
  const auto got = wait_for(5s);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].fd, p.r.get());
  EXPECT_EQ(got[0].events, EventMask::read);
}

TEST_P(DemuxBackend, UndrainedDataIsReportedAgainUntilRead) {
  Pipe p;
  ASSERT_FALSE(demux_->add(p.r.get(), EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "0123456789"));
  // Level-triggered: every wait reports the pipe while a byte is left, one byte read per wait.
  for (int i = 0; i < 10; ++i) {
    const auto got = wait_for(5s);
    ASSERT_EQ(events_of(got, p.r.get()), EventMask::read) << "byte " << i;
    char c = 0;
    ASSERT_EQ(::read(p.r.get(), &c, 1), 1);
    EXPECT_EQ(c, '0' + i);
  }
  EXPECT_TRUE(wait_for(20ms).empty());
}

TEST_P(DemuxBackend, ModifySwitchesBetweenReadAndWrite) {
  SocketPair s;
  ASSERT_FALSE(demux_->add(s.a.get(), EventMask::read));
  EXPECT_TRUE(poll_now().empty());
  ASSERT_FALSE(demux_->modify(s.a.get(), EventMask::write));
  EXPECT_EQ(events_of(wait_for(5s), s.a.get()), EventMask::write);
  ASSERT_FALSE(demux_->modify(s.a.get(), EventMask::read));
  EXPECT_TRUE(wait_for(20ms).empty());
  ASSERT_FALSE(demux_->modify(s.a.get(), EventMask::read | EventMask::write));
  ASSERT_TRUE(put(s.b.get(), "x"));
  EXPECT_TRUE(wait_until_seen(s.a.get(), EventMask::read | EventMask::write));
}

TEST_P(DemuxBackend, RemovedDescriptorIsNotReported) {
  Pipe p;
  ASSERT_FALSE(demux_->add(p.r.get(), EventMask::read));
  EXPECT_TRUE(poll_now().empty());  // io_uring: the poll is now in the kernel
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_FALSE(demux_->remove(p.r.get()));
  EXPECT_TRUE(wait_for(30ms).empty());
  EXPECT_EQ(demux_->remove(p.r.get()), make_error_code(errc::not_registered));
}

// The PITFALLS "stale events on a reused fd" case at the backend level: the old pipe's poll
// completes, then its number is removed, closed and reused before the next wait.
TEST_P(DemuxBackend, CompletionOfRemovedDescriptorNeverReachesItsReusedNumber) {
  auto old_pipe = std::make_unique<Pipe>();
  const int fd = old_pipe->r.get();
  ASSERT_FALSE(demux_->add(fd, EventMask::read));
  EXPECT_TRUE(poll_now().empty());
  ASSERT_TRUE(put(old_pipe->w.get(), "stale"));  // the old poll completes now
  ASSERT_FALSE(demux_->remove(fd));
  old_pipe.reset();
  Pipe fresh;
  ASSERT_EQ(fresh.r.get(), fd) << "the kernel did not reuse the number; test is void";
  ASSERT_FALSE(demux_->add(fd, EventMask::read));
  EXPECT_TRUE(wait_for(30ms).empty());
  ASSERT_TRUE(put(fresh.w.get(), "new"));
  EXPECT_EQ(events_of(wait_for(5s), fd), EventMask::read);
}

TEST_P(DemuxBackend, ModifyDropsTheCompletionOfTheReplacedPoll) {
  SocketPair s;
  ASSERT_FALSE(demux_->add(s.a.get(), EventMask::read));
  EXPECT_TRUE(poll_now().empty());
  ASSERT_TRUE(put(s.b.get(), "x"));                           // the read poll completes...
  ASSERT_FALSE(demux_->modify(s.a.get(), EventMask::write));  // ...but read is no longer asked
  const auto got = wait_for(5s);
  EXPECT_EQ(events_of(got, s.a.get()), EventMask::write);
}

TEST_P(DemuxBackend, HangupWakesReader) {
  SocketPair s;
  ASSERT_FALSE(demux_->add(s.a.get(), EventMask::read));
  s.b.reset();
  EXPECT_TRUE(has(events_of(wait_for(5s), s.a.get()), EventMask::read));
  char c = 0;
  EXPECT_EQ(::read(s.a.get(), &c, 1), 0);
}

TEST_P(DemuxBackend, MisuseGetsReactorErrors) {
  Pipe p;
  const int closed = p.r.release();
  ::close(closed);
  EXPECT_EQ(demux_->add(closed, EventMask::read), make_error_code(errc::invalid_handle));
  EXPECT_EQ(demux_->add(-1, EventMask::read), make_error_code(errc::invalid_handle));
  EXPECT_EQ(demux_->modify(p.w.get(), EventMask::write), make_error_code(errc::not_registered));
  ASSERT_FALSE(demux_->add(p.w.get(), EventMask::write));
  EXPECT_EQ(demux_->add(p.w.get(), EventMask::write), make_error_code(errc::already_registered));
}

// A wait may end early with nothing (EINTR; also the one spurious EINTR a thread gets after it
// tore down an io_uring ring, which the kernel reports through task work), so measure as the
// reactor waits: again for the rest, until the deadline.
TEST_P(DemuxBackend, TimeoutIsNeverEarlyAndNotMuchLate) {
  Pipe p;
  ASSERT_FALSE(demux_->add(p.r.get(), EventMask::read));
  std::array<ReadyEvent, 4> ready{};
  for (auto timeout : {0ms, 1ms, 30ms}) {
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    int early = 0;
    for (;;) {
      std::size_t n = 0;
      const auto left = std::max(std::chrono::nanoseconds::zero(), deadline - Clock::now());
      ASSERT_FALSE(demux_->wait(ready, left, n));
      ASSERT_EQ(n, 0U);
      if (Clock::now() >= deadline) break;
      // A backend that spins returns thousands of times within the deadline; a few spurious
      // wake-ups are allowed (an ASan run saw three on kqueue_emulated after the io_uring cases).
      ASSERT_LT(++early, 20) << "wait keeps returning before its timeout";
    }
    EXPECT_LT(Clock::now() - start, timeout + 500ms) << "generous for sanitizer builds";
  }
}

TEST_P(DemuxBackend, ManyDescriptorsThroughASmallSpan) {
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  const std::size_t pairs = std::min<std::size_t>(400, (lim.rlim_cur - 64) / 2);
  std::vector<SocketPair> sockets(pairs);
  std::set<int> want;
  for (std::size_t i = 0; i < pairs; ++i) {
    ASSERT_TRUE(sockets[i].a.valid());
    ASSERT_FALSE(demux_->add(sockets[i].a.get(), EventMask::read));
    if (i % 3 == 0) {
      ASSERT_TRUE(put(sockets[i].b.get(), "x"));
      want.insert(sockets[i].a.get());
    }
  }
  // A span of 16 forces several waits; each reported descriptor is drained so it goes quiet.
  std::set<int> seen;
  const auto deadline = Clock::now() + 10s;
  while (seen.size() < want.size() && Clock::now() < deadline) {
    for (const ReadyEvent& e : wait_for(1s, 16)) {
      ASSERT_EQ(want.count(e.fd), 1U) << "fd " << e.fd << " was never written to";
      EXPECT_EQ(e.events, EventMask::read);
      seen.insert(e.fd);
      take(e.fd);
    }
  }
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(wait_for(20ms).empty());
}

void ignore_signal(int) {}

TEST_P(DemuxBackend, SignalInterruptsWaitWithoutError) {
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = ignore_signal;  // no SA_RESTART: the wait must return
  ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
  Pipe p;
  ASSERT_FALSE(demux_->add(p.r.get(), EventMask::read));
  std::atomic<bool> returned{false};
  const pthread_t waiter = ::pthread_self();
  // Keeps signalling until the wait has returned: the first signal may land before it blocks.
  std::thread kicker([&] {
    while (!returned.load()) {
      ::pthread_kill(waiter, SIGUSR2);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::array<ReadyEvent, 4> ready{};
  std::size_t n = 7;
  const auto start = Clock::now();
  const std::error_code ec = demux_->wait(ready, 10s, n);
  returned = true;
  kicker.join();
  ::sigaction(SIGUSR2, &old, nullptr);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, 0U);
  EXPECT_LT(Clock::now() - start, 5s);
}

INSTANTIATE_TEST_SUITE_P(New, DemuxBackend, ::testing::ValuesIn(new_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

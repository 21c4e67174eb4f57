// The future layer's durations at the edges of their range (issue 13), on every backend:
// sleep_for, sleep_until, timeout and connect with every value of duration_edges(), and
// PoolJoinHandle::wait_for. A duration of zero or less has already passed (sleep_for completes
// at once, timeout expires at its first chance), and one reaching past the end of the clock's
// range never passes; nothing overflows (the ASan+UBSan build halts on signed overflow) and
// nothing completes early.
#include <sys/socket.h>

#include <vector>

#include "duration_edges.hpp"
#include "futures_support.hpp"
#include "reactor/futures/pool_executor.hpp"

namespace reactor::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// An overflowed deadline can leave the reactor blocked in a wait that nothing short of an event
// ends: the fixture's watchdog posts one (Reactor::post is for any thread) and records it.
class DurationEdgesFutures : public FuturesTest {
 protected:
  void TearDown() override {
    dog_.stop();
    EXPECT_FALSE(dog_.expired()) << "the loop was stuck until the watchdog woke it";
    FuturesTest::TearDown();
  }
  Watchdog dog_{seconds(20), [this] { (void)r().post([] {}); }};
};

Task<void> sleeper(Reactor& r, Duration d, TimePoint* done_at) {
  co_await sleep_for(r, d);
  *done_at = Clock::now();
}

TEST_P(DurationEdgesFutures, SleepFor) {
  const auto edges = duration_edges();
  std::vector<TimePoint> start;
  std::vector<TimePoint> done(edges.size());
  std::vector<JoinHandle<void>> handles;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    start.push_back(Clock::now());
    handles.push_back(ex().spawn(sleeper(r(), edges[i].value, &done[i])));
  }
  run(sleep_for(r(), milliseconds(20)));
  std::size_t pending = 0;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const DurationEdge& e = edges[i];
    if (e.value <= milliseconds(1)) {
      EXPECT_TRUE(handles[i].done()) << e;
    } else {
      EXPECT_FALSE(handles[i].done()) << e << " completed";
      ++pending;
    }
    if (handles[i].done()) {
      EXPECT_GE(done[i] - start[i], e.value) << e << " completed early";
    }
  }
  EXPECT_EQ(r().timer_count(), pending);
  for (auto& h : handles) h.cancel();
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(DurationEdgesFutures, SleepUntilTheEndsOfTime) {
  auto first = ex().spawn(sleep_until(r(), TimePoint::min()));
  auto last = ex().spawn(sleep_until(r(), TimePoint::max()));
  run(sleep_for(r(), milliseconds(10)));
  EXPECT_TRUE(first.done());
  EXPECT_FALSE(last.done()) << "a sleep until TimePoint::max() completed";
  EXPECT_EQ(r().timer_count(), 1U);
  last.cancel();
  EXPECT_EQ(r().timer_count(), 0U);
}

// A child that never completes, limited by every edge (and by deadlines at both ends of the
// clock's range): the short ones expire with timed_out, the others are still waiting.
TEST_P(DurationEdgesFutures, Timeout) {
  const auto edges = duration_edges();
  std::vector<JoinHandle<Outcome<int>>> handles;
  for (const DurationEdge& e : edges) {
    handles.push_back(ex().spawn(outcome_of(timeout(r(), Manual{}, e.value))));
  }
  auto before_time = ex().spawn(outcome_of(Timeout<Manual>(r(), Manual{}, TimePoint::min())));
  auto after_time = ex().spawn(outcome_of(Timeout<Manual>(r(), Manual{}, TimePoint::max())));
  run(sleep_for(r(), milliseconds(20)));
  std::size_t pending = 0;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const DurationEdge& e = edges[i];
    if (e.value <= milliseconds(1)) {
      ASSERT_TRUE(handles[i].done()) << e;
      const Outcome<int> o = ex().block_on(std::move(handles[i]));
      ASSERT_FALSE(o.has_value()) << e;
      EXPECT_EQ(o.error(), std::errc::timed_out) << e;
    } else {
      EXPECT_FALSE(handles[i].done()) << e << " expired";
      ++pending;
    }
  }
  ASSERT_TRUE(before_time.done());
  const Outcome<int> o = ex().block_on(std::move(before_time));
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error(), std::errc::timed_out);
  EXPECT_FALSE(after_time.done()) << "a deadline at TimePoint::max() expired";
  EXPECT_EQ(r().timer_count(), pending + 1);
  for (auto& h : handles) h.cancel();
  after_time.cancel();
  EXPECT_EQ(r().timer_count(), 0U);
}

// connect's limit, towards a listener whose queue is full (the handshake never completes).
TEST_P(DurationEdgesFutures, ConnectLimit) {
  auto l = Listener::bind_loopback(r(), 0, 0);
  ASSERT_TRUE(l);
  const sockaddr_in addr = loopback_address(l.value().port());
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 8; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    (void)::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    fillers.push_back(std::move(fd));
  }
  const auto edges = duration_edges();
  std::vector<JoinHandle<Outcome<Stream>>> handles;
  for (const DurationEdge& e : edges) {
    handles.push_back(ex().spawn(outcome_of(connect(r(), addr, e.value))));
  }
  run(sleep_for(r(), milliseconds(30)));
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const DurationEdge& e = edges[i];
    if (e.value <= milliseconds(1)) {
      ASSERT_TRUE(handles[i].done()) << e;
      const Outcome<Stream> o = ex().block_on(std::move(handles[i]));
      if (o.has_value()) GTEST_SKIP() << "the kernel completed the handshake despite a full queue";
      EXPECT_EQ(o.error(), std::errc::timed_out) << e;
    } else {
      EXPECT_FALSE(handles[i].done()) << e << " ended";
    }
  }
  for (auto& h : handles) h.cancel();
  EXPECT_EQ(r().timer_count(), 0U);
}

INSTANTIATE_TEST_SUITE_P(Backends, DurationEdgesFutures,
                         ::testing::ValuesIn(conformance_backends()), backend_param_name);

// PoolJoinHandle::wait_for: a finished task is reported at once whatever the limit; for a task
// that takes 20 ms, every limit longer than that waits for it (never returns false early), and a
// short one returns true only if the task has really finished.
TEST(DurationEdgesPool, WaitFor) {
  ReactorPool pool(1);
  PoolExecutor ex(pool);
  auto finished = ex.spawn([](Executor&) -> Task<int> { co_return 7; });
  ASSERT_TRUE(finished.wait_for(std::chrono::seconds(60)));
  for (const DurationEdge& e : duration_edges()) EXPECT_TRUE(finished.wait_for(e.value)) << e;
  for (const DurationEdge& e : duration_edges()) {
    const TimePoint start = Clock::now();
    auto slow = ex.spawn([](Executor& x) -> Task<int> {
      co_await sleep_for(x.reactor(), milliseconds(20));
      co_return 1;
    });
    const bool ok = slow.wait_for(e.value);
    const Duration waited = Clock::now() - start;
    if (e.value > std::chrono::seconds(1)) {
      EXPECT_TRUE(ok) << e << " gave up after " << waited.count() << " ns";
    }
    if (ok) {
      EXPECT_GE(waited, milliseconds(20)) << e;
    }
    ASSERT_TRUE(slow.wait_for(std::chrono::seconds(60))) << e;
    EXPECT_EQ(slow.get(), 1) << e;
  }
}

}  // namespace
}  // namespace reactor::test

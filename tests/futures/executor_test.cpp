// Executor and Waker semantics: wakes before Pending, from other threads, spurious and repeated
// wakes, cancellation, executor destruction, and 10,000 concurrent tasks.
#include <random>
#include <thread>
#include <vector>

#include "futures_support.hpp"

namespace reactor::test {
namespace {

using ExecutorTest = FuturesTest;

TEST_P(ExecutorTest, SpawnedTaskRunsAndJoinYieldsItsValue) {
  auto h = ex().spawn([]() -> Task<int> { co_return 42; }());
  EXPECT_EQ(ex().task_count(), 1U);
  EXPECT_EQ(run(std::move(h)), 42);
  EXPECT_EQ(ex().task_count(), 0U);
}

TEST_P(ExecutorTest, WakeBeforePendingIsReturnedPollsAgain) {
  Manual m;
  m.state->wake_in_poll = true;
  auto s = m.state;
  auto h = ex().spawn(std::move(m));
  // The first poll wakes itself and returns Pending; the wake must not be lost.
  ASSERT_TRUE(run_until(r(), [&] {
    (void)ex().block_on(yield_now());
    return s->polls.load() >= 2;
  }));
  EXPECT_FALSE(h.done());
  s->ready = true;
  s->value = 7;
  s->waker.wake();
  EXPECT_EQ(run(std::move(h)), 7);
}

TEST_P(ExecutorTest, TaskWokenManyTimesIsQueuedOnce) {
  Manual m;
  auto s = m.state;
  auto h = ex().spawn(std::move(m));
  (void)ex().block_on(yield_now());  // runs the first poll
  ASSERT_EQ(s->polls.load(), 1);
  const std::uint64_t before = ex().poll_count();
  // From the loop thread inside the executor (another task), and from a second thread while
  // the executor is idle: a thousand wakes each, one queue entry.
  ex().block_on([](Waker w) -> Task<void> {
    for (int i = 0; i < 1000; ++i) w.wake();
    co_return;
  }(s->waker));
  (void)ex().block_on(yield_now());  // block_on returned when its own task did; now A runs
  EXPECT_EQ(s->polls.load(), 2);
  std::thread t([w = s->waker] {
    for (int i = 0; i < 1000; ++i) w.wake();
  });
  t.join();
  (void)ex().block_on(yield_now());
  (void)ex().block_on(yield_now());
  EXPECT_EQ(s->polls.load(), 3);
  // The waking task (1 poll), three yielding tasks (2 each) and the two polls of the woken one.
  EXPECT_EQ(ex().poll_count() - before, 1U + 3U * 2U + 2U);
  h.cancel();
}

TEST_P(ExecutorTest, WakeFromAnotherThreadInterruptsTheWait) {
  for (int round = 0; round < 50; ++round) {
    struct FromThread {
      using value_type = int;
      std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(false);
      std::shared_ptr<std::thread> thread;
      Poll<int> poll(const Waker& w) {
        if (flag->load(std::memory_order_acquire)) {
          thread->join();
          return 1;
        }
        if (!thread) {
          thread = std::make_shared<std::thread>([f = flag, w] {
            f->store(true, std::memory_order_release);
            w.wake();
          });
        }
        return std::nullopt;
      }
    };
    // No timer or descriptor is involved: only the cross-thread wake can end the wait.
    EXPECT_EQ(ex().block_on(FromThread{}), 1);
  }
}

TEST_P(ExecutorTest, SpuriousWakesPollTheLeafButDoNotResumeTheBody) {
  Manual m;
  auto s = m.state;
  int resumed = 0;
  auto h = ex().spawn([](Manual leaf, int& resumed) -> Task<int> {
    const int v = co_await leaf;
    ++resumed;
    co_return v + 1;
  }(std::move(m), resumed));
  (void)ex().block_on(yield_now());
  ASSERT_EQ(s->polls.load(), 1);
  for (int i = 0; i < 5; ++i) {
    s->waker.wake();
    (void)ex().block_on(yield_now());
  }
  EXPECT_EQ(s->polls.load(), 6);
  EXPECT_EQ(resumed, 0);
  EXPECT_FALSE(h.done());
  s->value = 9;
  s->ready = true;
  s->waker.wake();
  EXPECT_EQ(run(std::move(h)), 10);
  EXPECT_EQ(resumed, 1);
}

TEST_P(ExecutorTest, WakerOutlivingItsTaskAndExecutorIsHarmless) {
  Manual m;
  auto s = m.state;
  auto h = ex().spawn(std::move(m));
  (void)ex().block_on(yield_now());
  Waker kept = s->waker;
  s->ready = true;
  kept.wake();
  EXPECT_EQ(run(std::move(h)), 0);
  const auto polls = s->polls.load();
  kept.wake();  // finished: a no-op
  (void)ex().block_on(yield_now());
  EXPECT_EQ(s->polls.load(), polls);
  // A waker of a task that is still pending when the executor goes.
  Manual m2;
  auto s2 = m2.state;
  auto h2 = ex().spawn(std::move(m2));
  (void)ex().block_on(yield_now());
  Waker orphan = s2->waker;
  TearDown();
  std::thread t([&] { orphan.wake(); });
  t.join();
  orphan.wake();
  EXPECT_TRUE(h2.done());
}

TEST_P(ExecutorTest, CancelDropsTheFutureAndItsTimerAtOnce) {
  auto h = ex().spawn(sleep_for(r(), 1h));
  (void)ex().block_on(yield_now());
  EXPECT_EQ(r().timer_count(), 1U);
  h.cancel();
  EXPECT_EQ(r().timer_count(), 0U);
  EXPECT_TRUE(h.done());
  try {
    ex().block_on(std::move(h));
    ADD_FAILURE() << "a cancelled task yields an error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::operation_canceled);
  }
}

TEST_P(ExecutorTest, TaskCancellingItselfStopsAfterThisPoll) {
  JoinHandle<void> self;
  bool after = false;
  self = ex().spawn([](JoinHandle<void>& me, bool& after) -> Task<void> {
    me.cancel();
    co_await yield_now();
    after = true;
  }(self, after));
  (void)ex().block_on(yield_now());
  (void)ex().block_on(yield_now());
  EXPECT_TRUE(self.done());
  EXPECT_FALSE(after);
}

TEST_P(ExecutorTest, DestroyingTheExecutorDropsLiveTasksAndTheirRegistrations) {
  Pipe p;
  auto a = ex().spawn(sleep_for(r(), 1h));
  auto b = ex().spawn(readable(r(), p.r.get()));
  ex().spawn([](Reactor& r) -> Task<void> { co_await sleep_for(r, 1h); }(r())).detach();
  (void)ex().block_on(yield_now());
  EXPECT_EQ(r().timer_count(), 2U);
  EXPECT_EQ(r().handler_count(), 1U);
  Reactor& reactor = r();
  TearDown();  // the executor goes first, then the reactor
  SUCCEED();
  (void)reactor;
  EXPECT_TRUE(a.done());
  EXPECT_TRUE(b.done());
}

TEST_P(ExecutorTest, BlockOnInsideATaskIsRefused) {
  auto inner = [](Executor& e) -> Task<int> {
    try {
      e.block_on(yield_now());
    } catch (const std::system_error& err) {
      co_return err.code() == make_error_code(errc::reentrant_call) ? 1 : 2;
    }
    co_return 0;
  };
  EXPECT_EQ(run(inner(ex())), 1);
}

TEST_P(ExecutorTest, TenThousandConcurrentTasks) {
  constexpr int n = 10000;
  std::mt19937 rng(12345);
  std::vector<JoinHandle<int>> handles;
  handles.reserve(n);
  std::vector<Promise<int>> promises(n);
  int finished = 0;
  for (int i = 0; i < n; ++i) {
    const auto delay = std::chrono::microseconds(rng() % 20000);
    handles.push_back(
        ex().spawn([](Reactor& r, Duration d, Future<int> f, int i, int& finished) -> Task<int> {
          co_await sleep_for(r, d);
          co_await yield_now();
          const int v = co_await f;
          ++finished;
          co_return v + i;
        }(r(), delay, promises[i].get_future(), i, finished)));
  }
  EXPECT_EQ(ex().task_count(), static_cast<std::size_t>(n));
  // The promises are completed by one more task, in reverse order, once all timers are due.
  auto producer = [](Reactor& r, std::vector<Promise<int>>& ps) -> Task<void> {
    co_await sleep_for(r, 25ms);
    for (auto it = ps.rbegin(); it != ps.rend(); ++it) it->set_value(1000000);
  };
  run(producer(r(), promises));
  long long sum = 0;
  auto join_all = [](std::vector<JoinHandle<int>>& hs, long long& sum) -> Task<void> {
    for (auto& h : hs) sum += co_await h;
  };
  run(join_all(handles, sum), 30s);
  EXPECT_EQ(finished, n);
  EXPECT_EQ(sum, static_cast<long long>(n) * 1000000 + static_cast<long long>(n) * (n - 1) / 2);
  EXPECT_EQ(ex().task_count(), 0U);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(ExecutorTest, RunReturnsWhenNoTaskIsLeft) {
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    ex().spawn([](Reactor& r, int& done, int i) -> Task<void> {
          co_await sleep_for(r, std::chrono::milliseconds(i));
          ++done;
        }(r(), done, i))
        .detach();
  }
  EXPECT_FALSE(ex().run());
  EXPECT_EQ(done, 10);
}

INSTANTIATE_TEST_SUITE_P(Backends, ExecutorTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

// notify / post / end_event_loop across threads, on every backend (run under TSan in CI).
#include <atomic>
#include <thread>

#include "conformance.hpp"

namespace reactor::test {
namespace {

using ThreadConformance = Conformance;

constexpr int senders = 8;
constexpr int per_sender = 100000;

TEST_P(ThreadConformance, PostFloodFromManyThreadsDeliversEachOnceInOrderPerSender) {
  std::vector<int> next(senders, 0);  // touched only on the loop thread
  std::atomic<int> finished{0};
  int delivered = 0;
  int out_of_order = 0;
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < per_sender; ++i) {
        const auto ec = r().post([&, s, i] {
          if (next[s] != i) ++out_of_order;
          next[s] = i + 1;
          ++delivered;
        });
        if (ec) ADD_FAILURE() << ec.message();
      }
      finished.fetch_add(1);
    });
  }
  const bool all = run_until(
      r(), [&] { return finished.load() == senders && delivered == senders * per_sender; },
      std::chrono::seconds(120));
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all) << "delivered " << delivered;
  EXPECT_EQ(out_of_order, 0);
  for (int s = 0; s < senders; ++s) EXPECT_EQ(next[s], per_sender);
  // Exactly once: nothing more arrives later.
  ASSERT_TRUE(r().handle_events(milliseconds(10)));
  EXPECT_EQ(delivered, senders * per_sender);
}

TEST_P(ThreadConformance, NotifyFromManyThreadsCallsHooksOnTheLoopThread) {
  Probe h;
  const auto loop_thread = std::this_thread::get_id();
  int wrong_thread = 0;
  h.on_input = [&](Handle fd) {
    if (std::this_thread::get_id() != loop_thread || fd != invalid_handle) ++wrong_thread;
    return 0;
  };
  h.on_output = h.on_input;
  constexpr int per_thread = 20000;
  std::vector<std::thread> threads;
  for (int s = 0; s < 4; ++s) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < per_thread; ++i) {
        if (r().notify(&h, s % 2 == 0 ? EventMask::read : EventMask::write)) ADD_FAILURE();
      }
    });
  }
  const bool all = run_until(
      r(), [&] { return h.inputs + h.outputs == 4 * per_thread; }, std::chrono::seconds(60));
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all);
  EXPECT_EQ(h.inputs, 2 * per_thread);
  EXPECT_EQ(h.outputs, 2 * per_thread);
  EXPECT_EQ(wrong_thread, 0);
}

TEST_P(ThreadConformance, NotificationsAreBoundedPerIteration) {
  // A flood must not keep the loop from I/O: one iteration runs at most the configured batch.
  ReactorOptions options;
  options.max_notifications_per_iteration = 16;
  Reactor small(GetParam().make(), options);
  int ran = 0;
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(small.post([&] { ++ran; }));
  auto n = small.handle_events(milliseconds(100));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 16U);
  EXPECT_EQ(ran, 16);
  ASSERT_TRUE(run_until(small, [&] { return ran == 100; }));
}

TEST_P(ThreadConformance, PendingNotificationsOfADestroyedHandlerAreDropped) {
  Pipe p;
  auto* h = new Probe(p.r.get());
  ASSERT_FALSE(r().register_handler(h, EventMask::read));
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(r().notify(h, EventMask::read));
  delete h;  // registered, so its destructor withdraws the notifications too
  Probe witness;
  ASSERT_FALSE(r().notify(&witness, EventMask::read));
  ASSERT_TRUE(run_until(r(), [&] { return witness.inputs == 1; }));
}

TEST_P(ThreadConformance, PurgeNotifications) {
  Probe h;
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(r().notify(&h, EventMask::read));
  EXPECT_EQ(r().purge_notifications(&h), 5U);
  ASSERT_TRUE(r().handle_events(milliseconds(5)));
  EXPECT_EQ(h.inputs, 0);
}

TEST_P(ThreadConformance, EndEventLoopFromAnotherThread) {
  std::atomic<bool> running{false};
  ASSERT_FALSE(r().post([&] { running = true; }));
  std::thread stopper([&] {
    while (!running.load()) std::this_thread::yield();
    r().end_event_loop();
  });
  const auto ec = r().run_event_loop();  // blocks with nothing to do until stopped
  stopper.join();
  EXPECT_FALSE(ec);
  EXPECT_TRUE(running.load());
  EXPECT_FALSE(r().event_loop_done());
}

TEST_P(ThreadConformance, EndEventLoopFromAHandlerAndBeforeTheLoopStarts) {
  Probe h;
  h.on_timeout = [&](TimePoint, const void*) {
    r().end_event_loop();
    return 0;
  };
  ASSERT_TRUE(r().schedule_timer(&h, nullptr, milliseconds(1), milliseconds(1)));
  EXPECT_FALSE(r().run_event_loop());
  EXPECT_EQ(h.timeouts, 1);
  r().end_event_loop();  // before the loop starts: it returns at once
  EXPECT_FALSE(r().run_event_loop());
  EXPECT_LE(h.timeouts, 2);
}

TEST_P(ThreadConformance, HandleEventsFromInsideAHookIsRefused) {
  Probe h;
  std::error_code inner;
  h.on_timeout = [&](TimePoint, const void*) {
    inner = r().handle_events(Duration::zero()).error();
    return 0;
  };
  ASSERT_TRUE(r().schedule_timer(&h, nullptr, Duration::zero()));
  ASSERT_TRUE(run_until(r(), [&] { return h.timeouts == 1; }));
  EXPECT_EQ(inner, errc::reentrant_call);
}

TEST_P(ThreadConformance, ExceptionFromAHookPropagatesAndTheReactorStaysUsable) {
  Pipe p;
  Probe h(p.r.get());
  bool thrown = false;
  h.on_input = [&](Handle fd) -> int {
    take(fd);
    if (!thrown) {
      thrown = true;
      throw std::runtime_error("handler failure");
    }
    return 0;
  };
  Probe t;
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "x"));
  EXPECT_THROW(run_until(
                   r(), [] { return false; }, milliseconds(2000)),
               std::runtime_error);
  ASSERT_TRUE(put(p.w.get(), "y"));
  ASSERT_TRUE(r().schedule_timer(&t, nullptr, milliseconds(1)));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs == 2 && t.timeouts == 1; }));
}

INSTANTIATE_TEST_SUITE_P(Backends, ThreadConformance, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

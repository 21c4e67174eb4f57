// Future / Promise completed from handler callbacks, continuations, Task composition,
// when_all / when_any, and error propagation (error codes and exceptions).
#include <stdexcept>
#include <string>
#include <vector>

#include "futures_support.hpp"

namespace reactor::test {
namespace {

using FutureTest = FuturesTest;

// Completes a promise from its handle_input hook: the callback world feeding a task.
class PromiseOnInput final : public EventHandler {
 public:
  explicit PromiseOnInput(int fd) : fd_(fd) {}
  Handle get_handle() const override { return fd_; }
  int handle_input(Handle) override {
    promise.set_value(take(fd_));
    return -1;
  }
  int handle_close(Handle, EventMask) override { return 0; }
  Promise<std::string> promise;

 private:
  int fd_;
};

TEST_P(FutureTest, PromiseCompletedFromAHandlerCallbackWakesTheTask) {
  Pipe p;
  PromiseOnInput h(p.r.get());
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  auto reader = ex().spawn(h.promise.get_future());
  auto writer = [](int fd) -> Task<void> {
    co_await yield_now();
    EXPECT_TRUE(put(fd, "from the hook"));
  };
  run(writer(p.w.get()));
  EXPECT_EQ(run(std::move(reader)), "from the hook");
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(FutureTest, ErrorCodeBecomesSystemErrorAndOutcomeOfKeepsIt) {
  Promise<int> p;
  auto f = p.get_future();
  p.set_error(std::make_error_code(std::errc::connection_reset));
  p.set_value(1);  // the first completion wins
  auto o = run(outcome_of(std::move(f)));
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error(), std::errc::connection_reset);

  Promise<int> q;
  auto task = [](Future<int> f) -> Task<int> { co_return co_await f + 1; }(q.get_future());
  q.set_error(std::make_error_code(std::errc::io_error));
  try {
    run(std::move(task));
    ADD_FAILURE() << "expected an exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::io_error);
  }
}

TEST_P(FutureTest, ExceptionsPropagateThroughNestedTasksUnchanged) {
  auto leaf = []() -> Task<int> {
    co_await yield_now();
    throw std::runtime_error("deep");
  };
  auto middle = [&]() -> Task<int> { co_return co_await leaf() * 2; };
  auto top = [&]() -> Task<std::string> {
    try {
      co_await middle();
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not thrown";
  };
  EXPECT_EQ(run(top()), "caught deep");
  try {
    run(middle());
    ADD_FAILURE() << "expected runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "deep");
  }
}

TEST_P(FutureTest, CoReturnOfAFailureFailsWithoutThrowingInside) {
  auto t = []() -> Task<int> { co_return Outcome<int>::failure(async_errc::end_of_stream); };
  auto o = run(outcome_of(t()));
  EXPECT_EQ(o.error(), async_errc::end_of_stream);
  EXPECT_EQ(o.exception(), nullptr);
}

TEST_P(FutureTest, BrokenPromiseFailsTheFuture) {
  Future<int> f;
  {
    Promise<int> p;
    f = p.get_future();
  }
  EXPECT_EQ(run(outcome_of(std::move(f))).error(), async_errc::broken_promise);
}

TEST_P(FutureTest, ContinuationsRunInTheCompletingCallbackAndPassErrorsOn) {
  Promise<int> p;
  int ran = 0;
  auto f = p.get_future()
               .then([&](int v) {
                 ++ran;
                 return v * 2;
               })
               .then([&](int v) {
                 ++ran;
                 return std::to_string(v);
               });
  EXPECT_EQ(ran, 0);
  p.set_value(21);
  EXPECT_EQ(ran, 2);  // ran in set_value, not later
  EXPECT_TRUE(f.is_ready());
  EXPECT_EQ(run(std::move(f)), "42");

  Promise<int> q;
  int skipped = 0;
  auto g = q.get_future().then([&](int v) {
    ++skipped;
    return v;
  });
  q.set_error(std::make_error_code(std::errc::timed_out));
  EXPECT_EQ(skipped, 0);
  EXPECT_EQ(run(outcome_of(std::move(g))).error(), std::errc::timed_out);

  auto h = make_ready_future(1).then([](int) -> int { throw std::logic_error("in then"); });
  EXPECT_THROW(run(std::move(h)), std::logic_error);

  Promise<void> v;
  auto vf = v.get_future().then([] { return 5; });
  v.set_value();
  EXPECT_EQ(run(std::move(vf)), 5);
}

TEST_P(FutureTest, DroppedFutureIsSeenAsAbandoned) {
  Promise<int> p;
  {
    auto f = p.get_future();
    EXPECT_FALSE(p.abandoned());
  }
  EXPECT_TRUE(p.abandoned());
  p.set_value(1);  // harmless
}

TEST_P(FutureTest, WhenAllCollectsEveryValueInOrder) {
  auto delayed = [](Reactor& r, int v, int ms) -> Task<int> {
    co_await sleep_for(r, std::chrono::milliseconds(ms));
    co_return v;
  };
  auto [a, b, c] = run(when_all(delayed(r(), 1, 20), delayed(r(), 2, 1), sleep_for(r(), 5ms)));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(c, Unit{});
  std::vector<Task<int>> many;
  for (int i = 0; i < 50; ++i) many.push_back(delayed(r(), i, 50 - i));
  auto values = run(when_all(std::move(many)));
  ASSERT_EQ(values.size(), 50U);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(values[i], i);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(FutureTest, WhenAllFailsWithTheFirstErrorAndCancelsTheRest) {
  auto failing = [](Reactor& r) -> Task<int> {
    co_await sleep_for(r, 2ms);
    throw std::system_error(std::make_error_code(std::errc::connection_refused));
  };
  const auto start = Clock::now();
  auto o = run(outcome_of(when_all(sleep_for(r(), 1h), failing(r()), sleep_for(r(), 1h))));
  EXPECT_LT(Clock::now() - start, 5s);
  ASSERT_FALSE(o.has_value());
  try {
    std::rethrow_exception(o.exception());
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
  }
  EXPECT_EQ(r().timer_count(), 0U);  // both one-hour sleeps are gone
}

TEST_P(FutureTest, WhenAnyReturnsTheFirstAndDropsTheLosers) {
  Pipe p;
  auto fast = [](Reactor& r) -> Task<std::string> {
    co_await sleep_for(r, 3ms);
    co_return "fast";
  };
  auto winner = run(when_any(sleep_for(r(), 1h), fast(r()), readable(r(), p.r.get())));
  ASSERT_EQ(winner.index(), 1U);
  EXPECT_EQ(std::get<1>(winner), "fast");
  EXPECT_EQ(r().timer_count(), 0U);
  EXPECT_EQ(r().handler_count(), 0U);

  std::vector<Sleep> sleeps;
  sleeps.push_back(sleep_for(r(), 1h));
  sleeps.push_back(sleep_for(r(), 1ms));
  sleeps.push_back(sleep_for(r(), 1h));
  auto [index, unit] = run(when_any(std::move(sleeps)));
  EXPECT_EQ(index, 1U);
  (void)unit;
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(FutureTest, WhenAnyPropagatesAnErrorThatComesFirst) {
  Promise<int> p;
  auto f = p.get_future();
  auto failer = [](Promise<int> p) -> Task<void> {
    co_await yield_now();
    p.set_error(std::make_error_code(std::errc::broken_pipe));
  };
  ex().spawn(failer(std::move(p))).detach();
  auto o = run(outcome_of(when_any(std::move(f), sleep_for(r(), 1h))));
  EXPECT_EQ(o.error(), std::errc::broken_pipe);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(FutureTest, TimeoutExpiresAndCancelsItsChild) {
  Pipe p;
  const auto start = Clock::now();
  auto o = ex().block_on(outcome_of(timeout(r(), readable(r(), p.r.get()), 20ms)));
  EXPECT_GE(Clock::now() - start, 20ms);
  EXPECT_EQ(o.error(), std::errc::timed_out);
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(r().timer_count(), 0U);
  // And a child that finishes in time cancels the timer.
  EXPECT_NO_THROW(ex().block_on(timeout(r(), sleep_for(r(), 1ms), 1h)));
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(FutureTest, SleepNeverEndsEarly) {
  for (auto d : {1ms, 5ms, 15ms}) {
    const auto start = Clock::now();
    run(sleep_for(r(), d));
    EXPECT_GE(Clock::now() - start, d);
  }
  const auto until = Clock::now() + 10ms;
  run(sleep_until(r(), until));
  EXPECT_GE(Clock::now(), until);
}

INSTANTIATE_TEST_SUITE_P(Backends, FutureTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

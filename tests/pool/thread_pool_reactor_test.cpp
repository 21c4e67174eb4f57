// ThreadPoolReactor: docs/design.md's promises 1-6 and 8 with 2, 4 and 8 threads on every backend.
// The central check is promise 5: every hook of a handler (I/O, timer, notification,
// handle_close) bumps one per-handler "in hook" counter, which must never exceed 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "reactor/thread_pool_reactor.hpp"
#include "test_support.hpp"

namespace reactor::test {
namespace {

using namespace std::chrono_literals;

// The pool's counts get longer than test_support's default to arrive: N threads take turns.
struct Gauge : Tally {
  Gauge() : Tally(20s) {}
};

// Counts how many threads are inside one handler's hooks; remembers the worst case.
class Reentry {
 public:
  class Scope {
   public:
    explicit Scope(Reentry& r) : r_(r) {
      const int now = r_.inside_.fetch_add(1) + 1;
      int seen = r_.worst_.load();
      while (now > seen && !r_.worst_.compare_exchange_weak(seen, now)) {
      }
      // Widen the window in which a second thread could enter.
      for (int i = 0; i < 3; ++i) std::this_thread::yield();
    }
    ~Scope() { r_.inside_.fetch_sub(1); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Reentry& r_;
  };
  [[nodiscard]] int worst() const { return worst_.load(); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<int> worst_{0};
};

// Runs the pool on a background thread; stop() asks it to end and checks that it did.
class Loop {
 public:
  Loop(ThreadPoolReactor& r, std::size_t threads)
      : r_(r),
        done_(std::async(std::launch::async, [&r, threads] { return r.run_event_loop(threads); })) {
  }
  ~Loop() {
    if (done_.valid()) {
      r_.end_event_loop();
      done_.wait();
    }
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  // True when run_event_loop returned (without error) within the limit.
  bool stop() {
    r_.end_event_loop();
    if (done_.wait_for(10s) != std::future_status::ready) return false;
    return !done_.get();
  }

 private:
  ThreadPoolReactor& r_;
  std::future<std::error_code> done_;
};

using Param = std::tuple<BackendParam, int>;

class ThreadPoolReactorTest : public ::testing::TestWithParam<Param> {
 protected:
  ThreadPoolReactorTest() : reactor_(std::get<0>(GetParam()).make()) {}
  ThreadPoolReactor& r() { return reactor_; }
  [[nodiscard]] std::size_t threads() const { return std::get<1>(GetParam()); }

 private:
  ThreadPoolReactor reactor_;
};

// A handler on one end of its own socket pair that counts how many threads are inside its hooks
// at once, and its handle_close calls.
struct PairHandler : EventHandler {
  [[nodiscard]] Handle get_handle() const override { return pair.a.get(); }
  SocketPair pair;
  Reentry reentry;
  std::atomic<int> closes{0};
};

// A socket-pair reader with a timer and notifications, all sharing one reentry counter.
class Reader final : public PairHandler {
 public:
  Reader(Gauge& bytes, Gauge& notes, Gauge& ticks) : bytes_(bytes), notes_(notes), ticks_(ticks) {}
  int handle_input(Handle h) override {
    Reentry::Scope s(reentry);
    if (h == invalid_handle) {
      ++notified;
      notes_.add();
      return 0;
    }
    char buf[256];
    const ssize_t n = ::read(h, buf, sizeof buf);
    if (n > 0) bytes_.add(static_cast<int>(n));
    return 0;
  }
  int handle_timeout(TimePoint, const void*) override {
    Reentry::Scope s(reentry);
    ticks_.add();
    return 0;
  }
  int handle_close(Handle, EventMask) override {
    Reentry::Scope s(reentry);
    ++closes;
    return 0;
  }
  std::atomic<int> notified{0};

 private:
  Gauge& bytes_;
  Gauge& notes_;
  Gauge& ticks_;
};

TEST_P(ThreadPoolReactorTest, NoHandlerRunsOnTwoThreadsAndNoEventIsLost) {
  constexpr int handlers = 16;
  constexpr int writes = 200;  // one byte each, per handler
  constexpr int notes_per_handler = 100;
  Gauge bytes;
  Gauge notes;
  Gauge ticks;
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < handlers; ++i) {
    readers.push_back(std::make_unique<Reader>(bytes, notes, ticks));
    ASSERT_FALSE(r().register_handler(readers.back().get(), EventMask::read));
    ASSERT_TRUE(r().schedule_timer(readers.back().get(), nullptr, 1ms, 1ms));
  }
  Loop loop(r(), threads());
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int k = 0; k < writes; ++k) {
        for (int i = t; i < handlers; i += 4) {
          if (!put(readers[i]->pair.b.get(), "x")) ADD_FAILURE() << "write failed";
          if (k < notes_per_handler) (void)r().notify(readers[i].get(), EventMask::read);
        }
      }
    });
  }
  for (auto& s : senders) s.join();
  ASSERT_TRUE(bytes.wait_for(handlers * writes)) << bytes.value();
  ASSERT_TRUE(notes.wait_for(handlers * notes_per_handler)) << notes.value();
  ASSERT_TRUE(ticks.wait_for(handlers * 3)) << "interval timers did not keep firing";
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(bytes.value(), handlers * writes);
  for (auto& h : readers) {
    EXPECT_EQ(h->reentry.worst(), 1) << "a handler ran on two threads at once";
    EXPECT_EQ(h->notified.load(), notes_per_handler) << "a notification was lost or doubled";
  }
  for (auto& h : readers) r().cancel_timers(h.get());
}

// Closes after its first read; counts calls after the close (promise 1) and closes (2).
class OneShot final : public PairHandler {
 public:
  explicit OneShot(Gauge& closed) : closed_(closed) {}
  int handle_input(Handle) override {
    Reentry::Scope s(reentry);
    if (closes.load() > 0) ++after_close;
    (void)take(pair.a.get());
    return -1;
  }
  int handle_timeout(TimePoint, const void*) override {
    Reentry::Scope s(reentry);
    return 0;
  }
  int handle_close(Handle, EventMask) override {
    Reentry::Scope s(reentry);
    if (closes.fetch_add(1) == 0) closed_.add();
    return 0;
  }
  std::atomic<int> after_close{0};

 private:
  Gauge& closed_;
};

TEST_P(ThreadPoolReactorTest, HandleCloseExactlyOnceAlsoWhenRemovedFromAnotherThread) {
  constexpr int handlers = 64;
  Gauge closed;
  std::vector<std::unique_ptr<OneShot>> hs;
  for (int i = 0; i < handlers; ++i) {
    hs.push_back(std::make_unique<OneShot>(closed));
    ASSERT_FALSE(r().register_handler(hs.back().get(), EventMask::read));
    ASSERT_TRUE(r().schedule_timer(hs.back().get(), nullptr, 0ms, 1ms));
  }
  Loop loop(r(), threads());
  // Even handlers get data (and close themselves by returning -1); odd ones are removed from
  // this thread while the pool may be running their timers. Both race with more data.
  for (int i = 0; i < handlers; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(put(hs[i]->pair.b.get(), "data"));
    } else {
      const auto ec = r().remove_handler(hs[i].get());
      EXPECT_FALSE(ec) << ec.message();
      (void)put(hs[i]->pair.b.get(), "late");
    }
  }
  ASSERT_TRUE(closed.wait_for(handlers)) << closed.value();
  for (auto& h : hs) r().cancel_timers(h.get());
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(r().handler_count(), 0U);
  for (auto& h : hs) {
    EXPECT_EQ(h->closes.load(), 1);
    EXPECT_EQ(h->after_close.load(), 0);
    EXPECT_EQ(h->reentry.worst() <= 1, true) << "a handler ran on two threads at once";
  }
}

// Deletes itself in its first hook; a pending timer and queued notifications must then never
// reach it (ASan reports the use-after-free otherwise).
class SelfDeleting final : public EventHandler {
 public:
  SelfDeleting(ThreadPoolReactor& r, Gauge& deleted, std::atomic<int>& alive)
      : r_(r), deleted_(deleted), alive_(alive) {
    ++alive_;
  }
  ~SelfDeleting() override {
    --alive_;
    deleted_.add();
  }
  [[nodiscard]] Handle get_handle() const override { return pair.a.get(); }
  int handle_input(Handle) override {
    die();
    return 0;
  }
  int handle_timeout(TimePoint, const void*) override {
    die();
    return 0;
  }
  SocketPair pair;

 private:
  void die() {
    // The registration ends before the socket member closes: the leader may be updating the
    // kernel's interest in that descriptor at this very moment. The destructor withdraws the
    // timer and the queued notifications.
    (void)r_.remove_handler(this, EventMask::all_io, CloseHook::skip);
    delete this;
  }
  ThreadPoolReactor& r_;
  Gauge& deleted_;
  std::atomic<int>& alive_;
};

TEST_P(ThreadPoolReactorTest, HandlerDeletingItselfInAHookGetsNothingMore) {
  constexpr int handlers = 64;
  Gauge deleted;
  std::atomic<int> alive{0};
  std::vector<SelfDeleting*> hs;
  for (int i = 0; i < handlers; ++i) {
    auto* h = new SelfDeleting(r(), deleted, alive);
    ASSERT_FALSE(r().register_handler(h, EventMask::read));
    ASSERT_TRUE(r().schedule_timer(h, nullptr, std::chrono::milliseconds(i % 3)));
    ASSERT_FALSE(r().notify(h, EventMask::read | EventMask::write));
    ASSERT_TRUE(put(h->pair.b.get(), "x"));
    hs.push_back(h);
  }
  Loop loop(r(), threads());
  ASSERT_TRUE(deleted.wait_for(handlers));
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(alive.load(), 0);
  EXPECT_EQ(deleted.value(), handlers) << "a handler was deleted twice";
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(r().timer_count(), 0U);
}

// A handler that must never be called: it sits on a reused descriptor number.
class MustStayQuiet final : public EventHandler {
 public:
  int handle_input(Handle) override {
    ++calls;
    return 0;
  }
  std::atomic<int> calls{0};
};

TEST_P(ThreadPoolReactorTest, ReusedDescriptorNeverGetsThePredecessorsEvent) {
  constexpr int rounds = 50;
  MustStayQuiet quiet;
  Gauge done;
  struct Closer final : EventHandler {
    ThreadPoolReactor* reactor = nullptr;
    MustStayQuiet* quiet = nullptr;
    Gauge* done = nullptr;
    std::unique_ptr<Pipe> old_pipe = std::make_unique<Pipe>();
    std::unique_ptr<Pipe> new_pipe;
    int handle_input(Handle h) override {
      // Readable but never read: the old descriptor stays ready until closed. Close it and
      // register a quiet handler on the same number, which nobody writes to.
      (void)reactor->remove_handler(h, EventMask::all_io, CloseHook::skip);
      old_pipe.reset();
      new_pipe = std::make_unique<Pipe>();
      if (new_pipe->r.get() == h) {
        if (reactor->register_handler(new_pipe->r.get(), quiet, EventMask::read)) {
          ADD_FAILURE() << "re-registration failed";
        }
      }
      done->add();
      return 0;
    }
  };
  std::vector<std::unique_ptr<Closer>> closers;
  Loop loop(r(), threads());
  for (int i = 0; i < rounds; ++i) {
    auto c = std::make_unique<Closer>();
    c->reactor = &r();
    c->quiet = &quiet;
    c->done = &done;
    ASSERT_TRUE(put(c->old_pipe->w.get(), "x"));
    ASSERT_FALSE(r().register_handler(c->old_pipe->r.get(), c.get(), EventMask::read));
    ASSERT_TRUE(done.wait_for(i + 1));
    // Clear the quiet registration before the next round reuses numbers again.
    if (c->new_pipe)
      (void)r().remove_handler(c->new_pipe->r.get(), EventMask::all_io, CloseHook::skip);
    ASSERT_FALSE(r().retire(c.get()));
    closers.push_back(std::move(c));
  }
  // A round trip through the pool after the last round, so a late event would have arrived.
  Gauge flushed;
  ASSERT_FALSE(r().post([&] { flushed.add(); }));
  ASSERT_TRUE(flushed.wait_for(1));
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(quiet.calls.load(), 0);
}

TEST_P(ThreadPoolReactorTest, NotifyAndPostFromManyThreadsDeliveredExactlyOnce) {
  constexpr int senders = 4;
  constexpr int per_sender = 1000;
  Gauge bytes;
  Gauge notes;
  Gauge ticks;
  Reader target(bytes, notes, ticks);
  ASSERT_FALSE(r().register_handler(&target, EventMask::read));
  std::vector<std::atomic<int>> posted(senders);
  Gauge posts;
  Loop loop(r(), threads());
  std::vector<std::thread> threads_;
  for (int s = 0; s < senders; ++s) {
    threads_.emplace_back([&, s] {
      for (int i = 0; i < per_sender; ++i) {
        EXPECT_FALSE(r().notify(&target, EventMask::read));
        EXPECT_FALSE(r().post([&, s] {
          ++posted[s];
          posts.add();
        }));
      }
    });
  }
  for (auto& t : threads_) t.join();
  ASSERT_TRUE(notes.wait_for(senders * per_sender));
  ASSERT_TRUE(posts.wait_for(senders * per_sender));
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(target.notified.load(), senders * per_sender);
  for (auto& p : posted) EXPECT_EQ(p.load(), per_sender);
  EXPECT_EQ(target.reentry.worst(), 1);
  (void)r().remove_handler(&target, EventMask::all_io, CloseHook::skip);
}

TEST_P(ThreadPoolReactorTest, EndEventLoopFromAHookStopsEveryThread) {
  std::mutex m;
  std::set<std::thread::id> seen;
  Gauge ran;
  std::promise<void> stopped_by_hook;
  auto done = std::async(std::launch::async, [&] { return r().run_event_loop(threads()); });
  // Enough posts that several threads take part, then one that ends the loop.
  for (int i = 0; i < 200; ++i) {
    ASSERT_FALSE(r().post([&] {
      {
        std::lock_guard lock(m);
        seen.insert(std::this_thread::get_id());
      }
      ran.add();
    }));
  }
  ASSERT_TRUE(ran.wait_for(200));
  ASSERT_FALSE(r().post([&] { r().end_event_loop(); }));
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(done.get());
  EXPECT_LE(seen.size(), threads());
  // The reactor can run again afterwards.
  ASSERT_FALSE(r().post([&] { r().end_event_loop(); }));
  auto again = std::async(std::launch::async, [&] { return r().run_event_loop(threads()); });
  ASSERT_EQ(again.wait_for(10s), std::future_status::ready);
}

TEST_P(ThreadPoolReactorTest, EndEventLoopBeforeRunHolds) {
  r().end_event_loop();
  auto done = std::async(std::launch::async, [&] { return r().run_event_loop(threads()); });
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(done.get());
}

TEST_P(ThreadPoolReactorTest, RetireWaitsForTheRunningHook) {
  struct Slow final : EventHandler {
    std::promise<void> entered;
    std::promise<void> release;
    std::atomic<bool> exited{false};
    int handle_input(Handle) override {
      entered.set_value();
      release.get_future().wait();
      exited = true;
      return 0;
    }
  };
  Slow slow;
  Loop loop(r(), threads());
  ASSERT_FALSE(r().notify(&slow, EventMask::read));
  slow.entered.get_future().wait();
  auto retired = std::async(std::launch::async, [&] { return r().retire(&slow); });
  // Not a synchronisation: a negative check that retire is still waiting for the hook.
  EXPECT_EQ(retired.wait_for(20ms), std::future_status::timeout);
  slow.release.set_value();
  ASSERT_EQ(retired.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(retired.get());
  EXPECT_TRUE(slow.exited.load()) << "retire returned while the hook still ran";
  ASSERT_TRUE(loop.stop());
}

TEST_P(ThreadPoolReactorTest, CancelledTimerNeverFires) {
  // Scheduled already due and cancelled inside the handler's own hook: the leader may have
  // queued its expiry meanwhile, but it cannot run before the hook returns, nor after.
  struct Counter final : EventHandler {
    ThreadPoolReactor* r = nullptr;
    std::atomic<int> fired{0};
    std::atomic<int> cancel_errors{0};
    Gauge hooks;
    int handle_input(Handle) override {
      for (int i = 0; i < 20; ++i) {
        auto id = r->schedule_timer(this, nullptr, 0ms);
        if (!id || r->cancel_timer(*id)) ++cancel_errors;
      }
      hooks.add();
      return 0;
    }
    int handle_timeout(TimePoint, const void*) override {
      ++fired;
      return 0;
    }
  };
  Counter c;
  c.r = &r();
  Gauge flushed;
  Loop loop(r(), threads());
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(r().notify(&c, EventMask::read));
  struct Flag final : EventHandler {
    Gauge* g = nullptr;
    int handle_timeout(TimePoint, const void*) override {
      g->add();
      return 0;
    }
  } flag;
  flag.g = &flushed;
  ASSERT_TRUE(r().schedule_timer(&flag, nullptr, 60ms));
  ASSERT_TRUE(c.hooks.wait_for(20));
  ASSERT_TRUE(flushed.wait_for(1));
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(c.fired.load(), 0);
  EXPECT_EQ(c.cancel_errors.load(), 0);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST(ThreadPoolReactorBackend, IoUringIsRefused) {
  if (!backend_available(Backend::io_uring)) GTEST_SKIP() << "no io_uring in this build";
  try {
    ThreadPoolReactor r(ThreadPoolReactorOptions{Backend::io_uring});
    ADD_FAILURE() << "io_uring accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(errc::backend_unavailable));
  }
  ThreadPoolReactor best;  // `best` falls back to another backend
  EXPECT_NE(best.backend(), Backend::io_uring);
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const BackendParam& b : conformance_backends()) {
    if (b.name == "io_uring") continue;  // refused: see IoUringIsRefused
    for (int n : {2, 4, 8}) out.emplace_back(b, n);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, ThreadPoolReactorTest, ::testing::ValuesIn(params()),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" +
                                  std::to_string(std::get<1>(info.param)) + "threads";
                         });

}  // namespace
}  // namespace reactor::test

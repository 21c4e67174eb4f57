// PoolExecutor: tasks spread round-robin over 2 and 4 reactors, 10,000 tasks each complete
// exactly once, a task awaiting a task of another reactor is resumed on its own reactor by that
// reactor's thread, socket I/O on the reactor a task runs on (every backend), errors and
// exceptions crossing reactors, cancellation and dropped handles (nothing left behind: probes
// count live objects, LeakSanitizer checks the rest), and destroying the PoolExecutor while tasks
// are suspended. Every wait is bounded; nothing sleeps to synchronise.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "futures_support.hpp"
#include "reactor/futures/pool_executor.hpp"

namespace reactor::test {
namespace {

constexpr auto limit = 60s;  // generous for TSan; a correct run takes milliseconds

// ---- helpers -----------------------------------------------------------------------------------

// A one-shot gate that any thread may open; wait() is a future that completes once it is open.
class Gate {
  struct State {
    std::mutex mutex;
    bool open = false;
    Waker waiter;
  };

 public:
  struct Wait {
    using value_type = void;
    std::shared_ptr<State> state;
    Poll<void> poll(const Waker& waker) {
      std::lock_guard lock(state->mutex);
      if (state->open) return Outcome<void>();
      state->waiter = waker;
      return std::nullopt;
    }
  };

  void open() {
    Waker w;
    {
      std::lock_guard lock(state_->mutex);
      state_->open = true;
      w = std::move(state_->waiter);
    }
    w.wake();
  }
  [[nodiscard]] Wait wait() const { return Wait{state_}; }

 private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Where probes were destroyed, and how many are alive.
struct ProbeLog {
  std::mutex mutex;
  int alive = 0;
  std::vector<std::thread::id> destroyed_on;

  int live() {
    std::lock_guard lock(mutex);
    return alive;
  }
  std::vector<std::thread::id> destroyers() {
    std::lock_guard lock(mutex);
    return destroyed_on;
  }
};

// An object held by a task (in its frame or as its value); records its destruction's thread.
class Probe {
 public:
  explicit Probe(ProbeLog* log) : log_(log) {
    std::lock_guard lock(log_->mutex);
    ++log_->alive;
  }
  Probe(Probe&& other) noexcept : log_(std::exchange(other.log_, nullptr)) {}
  Probe& operator=(Probe&& other) noexcept {
    std::swap(log_, other.log_);
    return *this;
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
  ~Probe() {
    if (log_ == nullptr) return;
    std::lock_guard lock(log_->mutex);
    --log_->alive;
    log_->destroyed_on.push_back(std::this_thread::get_id());
  }

 private:
  ProbeLog* log_;
};

// Wraps a future: counts its polls and bumps `pending` the first time it is pending.
template <class F>
struct Observed {
  using value_type = future_value_t<F>;
  F inner;
  std::atomic<int>* polls;
  Tally* pending;
  bool reported = false;
  Poll<value_type> poll(const Waker& waker) {
    polls->fetch_add(1);
    auto r = inner.poll(waker);
    if (!r && !std::exchange(reported, true)) pending->add();
    return r;
  }
};

// Where a task ran.
struct Place {
  std::size_t index = 0;
  std::thread::id thread;
};

Place here(const PoolExecutor* p) {
  return {p->current_index().value(), std::this_thread::get_id()};
}

// Blocking waits with a bound: a task that never finishes fails the test instead of hanging it.
template <class T>
Outcome<T> outcome_within(PoolJoinHandle<T>& h) {
  if (!h.wait_for(limit)) return Outcome<T>::failure(std::make_error_code(std::errc::timed_out));
  return h.outcome();
}
template <class T>
T get_within(PoolJoinHandle<T>& h) {
  if (!h.wait_for(limit)) throw std::runtime_error("the task did not finish in time");
  return h.get();
}
template <class T>
T get_within(PoolJoinHandle<T>&& h) {
  return get_within(h);
}

// The thread that runs reactor `i` of `p` (asked from a task there).
std::thread::id thread_of(PoolExecutor& p, std::size_t i) {
  return get_within(p.spawn_on(i, [](PoolExecutor* pe) -> Task<Place> { co_return here(pe); }(&p)))
      .thread;
}

// Number of live tasks and pending timers of reactor `i`, from a task there (which counts
// itself as one live task).
using Load = std::pair<std::size_t, std::size_t>;
// The worker's own task (its executor runs until a stop request) and the asking task; no timer.
const Load idle{2, 0};
Load load_of(PoolExecutor& p, std::size_t i) {
  return get_within(p.spawn_on(i, [](Executor& e) -> Task<Load> {
    co_return Load{e.task_count(), e.reactor().timer_count()};
  }));
}

class PoolExecutorTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  ReactorPool pool_{GetParam()};
  PoolExecutor ex_{pool_};
};

// ---- placement ---------------------------------------------------------------------------------

TEST_P(PoolExecutorTest, TasksSpreadRoundRobinOverEveryReactorEachOnItsOwnThread) {
  const std::size_t n = GetParam();
  ASSERT_EQ(ex_.size(), n);
  EXPECT_FALSE(ex_.current_index().has_value());  // the test thread is none of the pool's
  constexpr std::size_t per_reactor = 8;
  std::vector<PoolJoinHandle<Place>> handles;
  for (std::size_t k = 0; k < n * per_reactor; ++k) {
    handles.push_back(ex_.spawn([](PoolExecutor* p) -> Task<Place> { co_return here(p); }(&ex_)));
  }
  std::vector<std::size_t> per(n, 0);
  std::map<std::size_t, std::set<std::thread::id>> threads;
  for (std::size_t k = 0; k < handles.size(); ++k) {
    EXPECT_EQ(handles[k].reactor_index(), k % n);
    ASSERT_TRUE(handles[k].wait_for(limit));
    const Place p = get_within(handles[k]);
    EXPECT_EQ(p.index, k % n) << "task " << k << " ran on another reactor than it was placed on";
    EXPECT_NE(p.thread, std::this_thread::get_id());
    ++per[p.index];
    threads[p.index].insert(p.thread);
  }
  std::set<std::thread::id> all;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(per[i], per_reactor) << "reactor " << i;
    ASSERT_EQ(threads[i].size(), 1U) << "reactor " << i << " ran tasks on several threads";
    all.insert(*threads[i].begin());
  }
  EXPECT_EQ(all.size(), n) << "two reactors share a thread";

  // spawn_on places exactly, whatever the round-robin position.
  for (std::size_t i = 0; i < n; ++i) {
    auto h =
        ex_.spawn_on(n - 1 - i, [](PoolExecutor* p) -> Task<Place> { co_return here(p); }(&ex_));
    EXPECT_EQ(get_within(h).index, n - 1 - i);
  }
}

TEST_P(PoolExecutorTest, TasksPostedToOneReactorStartInSpawnOrder) {
  auto order = std::make_shared<std::vector<int>>();  // touched on reactor 0's thread only
  std::vector<PoolJoinHandle<void>> handles;
  for (int k = 0; k < 200; ++k) {
    handles.push_back(ex_.spawn_on(0, [](std::shared_ptr<std::vector<int>> o, int v) -> Task<void> {
      o->push_back(v);
      co_return;
    }(order, k)));
  }
  for (auto& h : handles) get_within(h);  // synchronises with that task's completion
  ASSERT_EQ(order->size(), 200U);
  for (int k = 0; k < 200; ++k) EXPECT_EQ((*order)[k], k);
}

TEST_P(PoolExecutorTest, BadIndexFailsTheHandleWithInvalidArgument) {
  auto h = ex_.spawn_on(GetParam(), yield_now());
  EXPECT_TRUE(h.done());
  EXPECT_EQ(outcome_within(h).error(), make_error_code(errc::invalid_argument));
}

TEST(PoolExecutorConstruction, RefusesAPoolThatIsAlreadyRunning) {
  ReactorPool pool(2);
  ASSERT_FALSE(pool.start());
  try {
    PoolExecutor ex(pool);
    ADD_FAILURE() << "constructed over a running pool";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::already_registered));
  }
  pool.end_event_loop();
  pool.join();
  PoolExecutor ex(pool);  // stopped again: fine
  EXPECT_EQ(ex.block_on([]() -> Task<int> { co_return 7; }()), 7);
}

// ---- many tasks ----------------------------------------------------------------------------

// Runs once: counts its run and finishes in one of four ways.
Task<int> counted(PoolExecutor* p, std::vector<std::atomic<int>>* runs, int i) {
  (*runs)[i].fetch_add(1);
  Reactor& r = Executor::current()->reactor();
  switch (i % 4) {
    case 0: break;                        // at once
    case 1: co_await yield_now(); break;  // after the other ready tasks
    case 2: co_await sleep_for(r, std::chrono::microseconds(i % 1000)); break;  // a timer
    default: {  // a child on the next reactor, awaited
      const int child = co_await p->spawn([](int v) -> Task<int> {
        co_await yield_now();
        co_return v * 2;
      }(i));
      if (child != i * 2) throw std::logic_error("child returned a wrong value");
    }
  }
  co_return i;
}

TEST_P(PoolExecutorTest, TenThousandTasksAcrossThePoolAllCompleteExactlyOnce) {
  constexpr int count = 10000;
  std::vector<std::atomic<int>> runs(count);
  std::vector<PoolJoinHandle<int>> handles;
  handles.reserve(count);
  for (int i = 0; i < count; ++i) handles.push_back(ex_.spawn(counted(&ex_, &runs, i)));
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(handles[i].wait_for(limit)) << "task " << i << " did not finish";
    EXPECT_EQ(get_within(handles[i]), i);
    EXPECT_FALSE(handles[i].valid());
  }
  int wrong = 0;
  for (int i = 0; i < count; ++i) wrong += runs[i].load() == 1 ? 0 : 1;
  EXPECT_EQ(wrong, 0) << "tasks that ran zero or several times";
  for (std::size_t i = 0; i < GetParam(); ++i) {
    EXPECT_EQ(load_of(ex_, i), idle) << "reactor " << i;
  }
}

// ---- cross-reactor join ------------------------------------------------------------------------

Task<std::pair<int, Place>> gated_value(PoolExecutor* p, Gate::Wait gate, int value) {
  co_await std::move(gate);
  co_return std::pair{value, here(p)};
}

Task<std::pair<std::pair<int, Place>, Place>> awaiter(PoolExecutor* p,
                                                      PoolJoinHandle<std::pair<int, Place>> h,
                                                      std::atomic<int>* polls, Tally* pending) {
  // A named local: GCC 12 copies the bits of a moved-from member (without its move constructor)
  // when an aggregate is brace-initialised inside a co_await operand.
  Observed<PoolJoinHandle<std::pair<int, Place>>> watched{std::move(h), polls, pending};
  auto inner = co_await watched;
  co_return std::pair{inner, here(p)};
}

TEST_P(PoolExecutorTest, TaskOnOneReactorAwaitsATaskOnAnotherAndResumesOnItsOwn) {
  const std::size_t n = GetParam();
  // Both directions: 0 awaits 1, and the last awaits 0.
  for (auto [from, to] : {std::pair<std::size_t, std::size_t>{0, 1}, {n - 1, 0}}) {
    Gate gate;
    std::atomic<int> polls{0};
    Tally pending{limit};
    auto inner = ex_.spawn_on(to, gated_value(&ex_, gate.wait(), 42));
    auto outer = ex_.spawn_on(from, awaiter(&ex_, std::move(inner), &polls, &pending));
    // The awaiter is suspended on the other reactor's pending task before the gate opens, so
    // only the cross-reactor wake can resume it.
    ASSERT_TRUE(pending.wait_for(1));
    EXPECT_FALSE(outer.done());
    gate.open();
    ASSERT_TRUE(outer.wait_for(limit));
    const auto [inner_result, outer_place] = get_within(outer);
    EXPECT_EQ(inner_result.first, 42);
    EXPECT_EQ(inner_result.second.index, to);
    EXPECT_EQ(outer_place.index, from) << "the awaiter resumed on another reactor";
    EXPECT_NE(outer_place.thread, inner_result.second.thread);
    EXPECT_EQ(outer_place.thread, thread_of(ex_, from));
    EXPECT_EQ(polls.load(), 2) << "pending once, then woken once by the completion";
  }
}

// Awaits a chain through every reactor: reactor k awaits a task it spawns on reactor k + 1.
Task<int> chain(PoolExecutor* p, std::size_t k, Gate::Wait gate) {
  if (k + 1 == p->size()) {
    co_await std::move(gate);
    co_return 1;
  }
  const int below = co_await p->spawn_on(k + 1, chain(p, k + 1, std::move(gate)));
  if (p->current_index() != k) throw std::logic_error("resumed on the wrong reactor");
  co_return below + 1;
}

TEST_P(PoolExecutorTest, AChainOfJoinsThroughEveryReactorUnwinds) {
  Gate gate;
  auto h = ex_.spawn_on(0, chain(&ex_, 0, gate.wait()));
  EXPECT_FALSE(h.wait_for(std::chrono::milliseconds(1)));  // the gate is shut: cannot finish
  gate.open();
  EXPECT_EQ(get_within(h), static_cast<int>(GetParam()));
}

// ---- errors ------------------------------------------------------------------------------------

struct CustomError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Task<int> thrower(PoolExecutor* p) {
  co_await yield_now();
  throw CustomError("boom on reactor " + std::to_string(p->current_index().value()));
}

Task<int> failer() {
  co_await yield_now();
  co_return Outcome<int>::failure(std::make_error_code(std::errc::connection_reset));
}

Task<std::string> catcher(PoolJoinHandle<int> throwing, PoolJoinHandle<int> failing) {
  std::string seen;
  try {
    (void)co_await std::move(throwing);
    seen = "no exception";
  } catch (const CustomError& e) {
    seen = e.what();
  }
  auto o = co_await outcome_of(std::move(failing));
  seen += o ? " / a value" : " / " + o.error().message();
  co_return seen;
}

TEST_P(PoolExecutorTest, ErrorsAndExceptionsPropagateAcrossReactors) {
  const std::size_t other = GetParam() - 1;
  auto h =
      ex_.spawn_on(0, catcher(ex_.spawn_on(other, thrower(&ex_)), ex_.spawn_on(other, failer())));
  EXPECT_EQ(get_within(h), "boom on reactor " + std::to_string(other) + " / " +
                               std::make_error_code(std::errc::connection_reset).message());

  // And to a thread outside the pool, the exception keeps its type.
  EXPECT_THROW(get_within(ex_.spawn_on(1, thrower(&ex_))), CustomError);
  try {
    (void)get_within(ex_.spawn_on(1, failer()));
    ADD_FAILURE() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::make_error_code(std::errc::connection_reset));
  }
  // A factory that throws fails its task the same way.
  auto f = ex_.spawn_on(1, [](Executor&) -> Task<int> { throw CustomError("factory"); });
  EXPECT_THROW(get_within(f), CustomError);
}

TEST_P(PoolExecutorTest, BlockingCallsAreRefusedInsideATask) {
  EXPECT_EQ(ex_.block_on([](int v) -> Task<int> { co_return v + 1; }(41)), 42);
  auto h = ex_.spawn_on(0, [](PoolExecutor* p) -> Task<std::string> {
    std::string out;
    try {
      (void)p->block_on(yield_now());
      out = "block_on ran";
    } catch (const std::system_error& e) {
      out = e.code() == make_error_code(errc::reentrant_call) ? "refused" : e.what();
    }
    auto other = p->spawn_on(p->size() - 1, yield_now());
    out += other.outcome().error() == make_error_code(errc::reentrant_call) ? " refused" : " ran";
    co_await std::move(other);  // still awaitable after the refusal
    co_return out;
  }(&ex_));
  EXPECT_EQ(get_within(h), "refused refused");
}

// ---- cancellation and dropped handles -----------------------------------------------------------

Task<void> sleeps_for_an_hour(ProbeLog* log, Tally* started) {
  Probe probe(log);
  started->add();
  co_await sleep_for(Executor::current()->reactor(), std::chrono::hours(1));
}

TEST_P(PoolExecutorTest, CancelFromAnotherReactorDropsTheTaskOnItsOwnThread) {
  ProbeLog log;
  Tally started{limit};
  auto sleeper = ex_.spawn_on(1, sleeps_for_an_hour(&log, &started));
  ASSERT_TRUE(started.wait_for(1));
  auto canceller = ex_.spawn_on(0, [](PoolJoinHandle<void> h) -> Task<std::error_code> {
    h.cancel();
    auto o = co_await outcome_of(std::move(h));
    co_return o.error();
  }(std::move(sleeper)));
  EXPECT_EQ(get_within(canceller), std::make_error_code(std::errc::operation_canceled));
  EXPECT_EQ(log.live(), 0);
  ASSERT_EQ(log.destroyers().size(), 1U);
  EXPECT_EQ(log.destroyers()[0], thread_of(ex_, 1)) << "the future was dropped on another thread";
  // Its timer is withdrawn and the task is gone from reactor 1.
  EXPECT_EQ(load_of(ex_, 1), idle);
}

TEST_P(PoolExecutorTest, CancelBeforeTheTaskStartsNeverRunsIt) {
  ProbeLog log;
  std::atomic<int> ran{0};
  Gate never;
  std::vector<PoolJoinHandle<void>> handles;
  for (int k = 0; k < 100; ++k) {
    auto h = ex_.spawn([](ProbeLog* l, std::atomic<int>* r, Gate::Wait g) -> Task<void> {
      Probe p(l);
      r->fetch_add(1);
      co_await std::move(g);
    }(&log, &ran, never.wait()));
    h.cancel();  // races with the start: before it, or while waiting on the gate
    handles.push_back(std::move(h));
  }
  for (auto& h : handles) {
    EXPECT_EQ(outcome_within(h).error(), std::make_error_code(std::errc::operation_canceled));
  }
  EXPECT_EQ(log.live(), 0);
}

TEST_P(PoolExecutorTest, DroppedHandleDetachesTheTaskAndItsResultDiesOnItsReactor) {
  ProbeLog log;
  Gate gate;
  std::atomic<int> finished{0};
  {
    auto h = ex_.spawn_on(1, [](ProbeLog* l, Gate::Wait g, std::atomic<int>* f) -> Task<Probe> {
      co_await std::move(g);
      f->fetch_add(1);
      co_return Probe(l);
    }(&log, gate.wait(), &finished));
  }  // dropped while pending: the task runs on
  gate.open();
  // The detached task still finishes; its value is destroyed on reactor 1's thread.
  const auto t1 = thread_of(ex_, 1);
  for (int round = 0; round < 1000 && log.destroyers().empty(); ++round) (void)thread_of(ex_, 1);
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(log.live(), 0);
  ASSERT_EQ(log.destroyers().size(), 1U);
  EXPECT_EQ(log.destroyers()[0], t1);
}

TEST_P(PoolExecutorTest, AwaiterThatGivesUpDropsItsWakerAndLeaksNothing) {
  ProbeLog log;
  Gate gate;
  auto slow = ex_.spawn_on(1, [](ProbeLog* l, Gate::Wait g) -> Task<Probe> {
    co_await std::move(g);
    co_return Probe(l);
  }(&log, gate.wait()));
  // Reactor 0 waits 20 ms for it, times out and drops the handle (with its waker registered).
  auto impatient = ex_.spawn_on(0, [](PoolJoinHandle<Probe> h) -> Task<std::error_code> {
    auto o = co_await outcome_of(timeout(Executor::current()->reactor(), std::move(h), 20ms));
    co_return o.error();
  }(std::move(slow)));
  EXPECT_EQ(get_within(impatient), std::make_error_code(std::errc::timed_out));
  gate.open();  // the slow task now completes and wakes nobody
  for (int round = 0; round < 1000 && log.destroyers().empty(); ++round) (void)thread_of(ex_, 1);
  EXPECT_EQ(log.live(), 0);
  EXPECT_EQ(load_of(ex_, 0), idle);
  EXPECT_EQ(load_of(ex_, 1), idle);
}

// ---- I/O on the task's reactor (every backend) --------------------------------------------------

class PoolExecutorIoTest : public ::testing::TestWithParam<BackendParam> {};

// Accepts one connection on its own reactor and echoes until end of stream.
Task<std::size_t> echo_once(PoolExecutor* p, std::promise<std::uint16_t>* port, Place* where) {
  Reactor& r = Executor::current()->reactor();
  auto listener = Listener::bind_loopback(r, 0);
  if (!listener) {
    port->set_value(0);
    co_return Outcome<std::size_t>::failure(listener.error());
  }
  port->set_value(listener.value().port());
  Stream s = co_await listener.value().accept();
  *where = here(p);
  std::array<char, 4096> buf;
  std::size_t total = 0;
  for (;;) {
    const std::size_t n = co_await s.read_some(buf);
    if (n == 0) break;
    co_await s.write_all({buf.data(), n});
    total += n;
  }
  co_return total;
}

Task<void> send_all(Stream& s, const std::string& data) {
  // In uneven pieces, so that reads and writes interleave.
  for (std::size_t at = 0; at < data.size();) {
    const std::size_t n = std::min<std::size_t>(data.size() - at, 1 + (at * 7919) % 30000);
    co_await s.write_all({data.data() + at, n});
    at += n;
  }
  (void)s.shutdown_write();
}

Task<std::string> receive_all(Stream& s) {
  std::string out;
  std::array<char, 8192> buf;
  for (;;) {
    const std::size_t n = co_await s.read_some(buf);
    if (n == 0) co_return out;
    out.append(buf.data(), n);
  }
}

Task<std::string> echo_client(PoolExecutor* p, std::uint16_t port, std::string data, Place* where) {
  Reactor& r = Executor::current()->reactor();
  Stream s = co_await connect(r, loopback_address(port), 10s);
  *where = here(p);
  auto both = co_await when_all(send_all(s, data), receive_all(s));
  co_return std::move(std::get<1>(both));
}

TEST_P(PoolExecutorIoTest, TasksDoSocketIoOnTheirOwnReactors) {
  ReactorPool pool(2, GetParam().make);
  PoolExecutor ex(pool);
  std::promise<std::uint16_t> port;
  auto port_ready = port.get_future();
  Place server_place;
  Place client_place;
  auto server = ex.spawn_on(1, echo_once(&ex, &port, &server_place));
  ASSERT_EQ(port_ready.wait_for(limit), std::future_status::ready);
  const std::uint16_t p = port_ready.get();
  ASSERT_NE(p, 0);
  std::string payload(512 * 1024, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 131 + i / 977);
  auto client = ex.spawn_on(0, echo_client(&ex, p, payload, &client_place));
  ASSERT_TRUE(client.wait_for(limit));
  const std::string echoed = get_within(client);
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload) << "echoed bytes differ";
  EXPECT_EQ(get_within(server), payload.size());
  EXPECT_EQ(server_place.index, 1U);
  EXPECT_EQ(client_place.index, 0U);
  EXPECT_NE(server_place.thread, client_place.thread);
}

// ---- shutdown ----------------------------------------------------------------------------------

// Waits for data that never comes on a socket of its own reactor.
Task<void> reads_forever(ProbeLog* log, Tally* started, UniqueFd fd) {
  Probe probe(log);
  Stream s(Executor::current()->reactor(), std::move(fd));
  std::array<char, 16> buf;
  started->add();
  (void)co_await s.read_some(buf);
}

Task<void> awaits_forever(ProbeLog* log, Tally* started, PoolJoinHandle<void> other) {
  Probe probe(log);
  started->add();
  co_await std::move(other);
}

Task<void> gated(ProbeLog* log, Tally* started, Gate::Wait g) {
  Probe probe(log);
  started->add();
  co_await std::move(g);
}

// The error code of a failure, also when it came as a thrown std::system_error.
std::error_code cancellation_of(const Outcome<void>& o) {
  if (!o.exception()) return o.error();
  try {
    std::rethrow_exception(o.exception());
  } catch (const std::system_error& e) {
    return e.code();
  } catch (...) {
  }
  return {};
}

TEST_P(PoolExecutorTest, DestroyingThePoolExecutorWithSuspendedTasksIsClean) {
  const std::size_t n = GetParam();
  ReactorPool pool(n);
  auto ex = std::make_unique<PoolExecutor>(pool);
  std::vector<std::thread::id> threads;
  for (std::size_t i = 0; i < n; ++i) threads.push_back(thread_of(*ex, i));
  ProbeLog log;
  Tally started{limit};
  Gate never;
  std::vector<SocketPair> sockets(n);
  std::vector<PoolJoinHandle<void>> handles;
  for (std::size_t i = 0; i < n; ++i) {
    handles.push_back(ex->spawn_on(i, sleeps_for_an_hour(&log, &started)));
    handles.push_back(ex->spawn_on(i, reads_forever(&log, &started, std::move(sockets[i].a))));
    handles.push_back(ex->spawn_on(i, gated(&log, &started, never.wait())));
  }
  // Each reactor awaits the sleeper of the next one (a cross-reactor join that never ends).
  std::vector<PoolJoinHandle<void>> joins;
  for (std::size_t i = 0; i < n; ++i) {
    joins.push_back(
        ex->spawn_on(i, awaits_forever(&log, &started, std::move(handles[3 * ((i + 1) % n)]))));
  }
  const int tasks = static_cast<int>(4 * n);
  ASSERT_TRUE(started.wait_for(tasks));
  // A thread outside the pool blocks on one of them meanwhile.
  std::error_code blocked_result;
  std::thread blocked(
      [&, h = std::move(handles[2])]() mutable { blocked_result = outcome_within(h).error(); });
  ex.reset();
  blocked.join();
  EXPECT_EQ(blocked_result, std::make_error_code(std::errc::operation_canceled));
  for (auto& h : handles) {
    if (!h.valid()) continue;  // moved into a task or to the blocked thread
    EXPECT_TRUE(h.done());
    EXPECT_EQ(outcome_within(h).error(), std::make_error_code(std::errc::operation_canceled));
  }
  // A join was either dropped itself, or resumed first by its awaited task's cancellation and
  // then failed with the system_error that awaiting it threw.
  for (auto& h : joins) {
    EXPECT_TRUE(h.done());
    EXPECT_EQ(cancellation_of(outcome_within(h)),
              std::make_error_code(std::errc::operation_canceled));
  }
  EXPECT_EQ(log.live(), 0);
  // Every task's frame was destroyed on its own reactor's thread.
  const auto destroyers = log.destroyers();
  EXPECT_EQ(destroyers.size(), static_cast<std::size_t>(tasks));
  for (const auto& t : destroyers) {
    EXPECT_NE(std::find(threads.begin(), threads.end(), t), threads.end());
  }
}

TEST_P(PoolExecutorTest, SpawnAfterShutdownFailsAtOnce) {
  ex_.shutdown();
  ex_.shutdown();  // idempotent
  auto h = ex_.spawn(yield_now());
  EXPECT_TRUE(h.done());
  EXPECT_EQ(outcome_within(h).error(), std::make_error_code(std::errc::operation_canceled));
}

// The flaky RefusesAPoolThatIsAlreadyRunning made deterministic, on every backend: the pool's
// own threads certainly run every reactor first, then a PoolExecutor's threads, then another
// PoolExecutor's. Each set of threads must be served (an io_uring ring is bound to the thread
// that used it first; every reactor's loop failed with EEXIST and each task was cancelled).
TEST_P(PoolExecutorIoTest, ServesEachNewSetOfThreadsOfAPoolThatRanBefore) {
  constexpr std::size_t n = 2;
  ReactorPool pool(n, GetParam().make);
  ASSERT_FALSE(pool.start());
  Tally ran;
  for (std::size_t i = 0; i < n; ++i) ASSERT_FALSE(pool.post_to(i, [&] { ran.add(); }));
  const bool all_ran = ran.wait_for(static_cast<int>(n));
  pool.end_event_loop();
  pool.join();
  ASSERT_TRUE(all_ran);
  for (int round = 1; round <= 2; ++round) {
    PoolExecutor ex(pool);
    for (std::size_t i = 0; i < n; ++i) {
      auto h = ex.spawn_on(i, [](std::size_t v) -> Task<std::size_t> { co_return v + 1; }(i));
      Outcome<std::size_t> got = outcome_within(h);
      ASSERT_TRUE(got.has_value())
          << "round " << round << ", reactor " << i << ": " << got.error().message();
      EXPECT_EQ(got.value(), i + 1);
      EXPECT_FALSE(ex.loop_error(i)) << "round " << round << ", reactor " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, PoolExecutorTest, ::testing::Values(2U, 4U),
                         [](const auto& info) { return std::to_string(info.param) + "_reactors"; });
INSTANTIATE_TEST_SUITE_P(Backends, PoolExecutorIoTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

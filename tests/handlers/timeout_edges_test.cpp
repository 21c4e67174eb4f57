// The handlers' timeouts at the edges of Duration's range (issue 13), on every backend and on
// both reactors: StreamHandler's idle and linger timeouts and Connector's connect timeout, each
// set to every value of duration_edges(). Zero and negative values mean "no limit", 1 ns expires
// at once, and a value reaching past the end of the clock's range never expires; nothing
// overflows (the ASan+UBSan build halts on signed overflow) and nothing expires early.
#include <deque>
#include <memory>
#include <vector>

#include "duration_edges.hpp"
#include "handler_test_support.hpp"

namespace reactor::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A fresh dispatcher (Reactor or ThreadPoolReactor) on the backend under test.
class TimeoutEdges : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override { reactor_ = GetParam().make_dispatcher(); }
  void TearDown() override { reactor_.reset(); }
  Dispatcher& r() { return *reactor_; }
  ServiceLog& new_log() { return logs_.emplace_back(); }

  // Turns the loop until a witness timer `window` from now has fired (bounded).
  bool run_window(milliseconds window) {
    Probe witness;
    if (!r().schedule_timer(&witness, nullptr, window)) return false;
    return run_until(r(), [&] { return witness.timeouts > 0; });
  }

  std::deque<ServiceLog> logs_;  // declared first: destroyed after the reactor
  std::unique_ptr<Dispatcher> reactor_;

 private:
  // Counts its timeouts (the witness of run_window).
  struct Probe : EventHandler {
    int handle_timeout(TimePoint, const void*) override {
      ++timeouts;
      return 0;
    }
    int timeouts = 0;
  };
};

// Idle timeout, set at open (StreamOptions) and later (set_idle_timeout): only 1 ns expires in
// the window; the rest either disable it (zero, negative) or lie past the test's life.
TEST_P(TimeoutEdges, IdleTimeout) {
  const auto edges = duration_edges();
  std::vector<SocketPair> pairs(2 * edges.size());
  std::vector<std::unique_ptr<TestService>> services;
  std::vector<ServiceLog*> logs;
  std::vector<TimePoint> start;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    StreamOptions at_open;
    at_open.idle_timeout = edges[i].value;
    logs.push_back(&new_log());
    start.push_back(Clock::now());
    services.push_back(
        std::make_unique<TestService>(r(), std::move(pairs[2 * i].a), *logs.back(), at_open));
    ASSERT_FALSE(services.back()->open()) << edges[i];
    logs.push_back(&new_log());
    start.push_back(Clock::now());
    services.push_back(std::make_unique<TestService>(r(), std::move(pairs[2 * i + 1].a),
                                                     *logs.back(), StreamOptions{}));
    ASSERT_FALSE(services.back()->open()) << edges[i];
    services.back()->set_idle_timeout(edges[i].value);
  }
  // A bug here loops inside one handle_events call (an idle timer re-armed in the past).
  Watchdog dog(seconds(20));
  ASSERT_TRUE(run_window(milliseconds(20)));
  dog.stop();
  // The two 1 ns idle timers and the window's witness; a timer re-armed into the past would
  // fire again and again.
  EXPECT_LE(r().stats().timers_fired, 3U);
  for (std::size_t k = 0; k < services.size(); ++k) {
    const DurationEdge& e = edges[k / 2];
    const ServiceLog& log = *logs[k];
    if (e.value == Duration(1)) {
      ASSERT_EQ(log.closed, 1) << e;
      EXPECT_EQ(log.reasons.at(0), std::errc::timed_out) << e;
    } else {
      EXPECT_EQ(log.closed, 0) << e << (k % 2 == 0 ? " at open" : " set later") << " timed out";
      EXPECT_TRUE(services[k]->is_open()) << e;
    }
  }
}

// Linger timeout: close() with more queued than the socket takes, the peer not reading. Only
// 1 ns gives up (timed_out) in the window; for the rest the queue is flushed completely once the
// peer reads, and the close is clean.
TEST_P(TimeoutEdges, LingerTimeout) {
  const auto edges = duration_edges();
  const std::string payload = random_bytes(2 * 1024 * 1024, 11);
  std::vector<SocketPair> pairs(edges.size());
  std::vector<ServiceLog*> logs;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    StreamOptions o;
    o.linger_timeout = edges[i].value;
    logs.push_back(&new_log());
    auto s = std::make_unique<TestService>(r(), std::move(pairs[i].a), *logs.back(), o);
    s->open_hook = [&payload](TestService& self) {
      EXPECT_TRUE(self.send(std::string_view(payload)));
      EXPECT_GT(self.queued(), 0U);  // more than a socket buffer: closing has to wait
      self.close();
    };
    ASSERT_FALSE(StreamHandler::start(std::move(s))) << edges[i];
  }
  ASSERT_TRUE(run_window(milliseconds(20)));
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].value == Duration(1)) {
      ASSERT_EQ(logs[i]->closed, 1) << edges[i];
      EXPECT_EQ(logs[i]->reasons.at(0), std::errc::timed_out) << edges[i];
    } else {
      EXPECT_EQ(logs[i]->closed, 0) << edges[i] << " gave up";
    }
  }
  // The peers read: every connection still lingering delivers all of it and closes cleanly.
  std::vector<std::string> got(edges.size());
  std::vector<bool> eof(edges.size(), false);
  ASSERT_TRUE(run_until(r(), [&] {
    bool all = true;
    for (std::size_t i = 0; i < edges.size(); ++i) {
      if (!eof[i]) eof[i] = !pump_in(pairs[i].b.get(), got[i]);
      all = all && eof[i] && logs[i]->live == 0;
    }
    return all;
  }));
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].value == Duration(1)) continue;
    EXPECT_EQ(got[i].size(), payload.size()) << edges[i];
    ASSERT_EQ(logs[i]->closed, 1) << edges[i];
    EXPECT_FALSE(logs[i]->reasons.at(0)) << edges[i] << ": " << logs[i]->reasons[0].message();
  }
}

// Connect timeout towards a listener whose queue is full (the handshake never completes): only
// 1 ns times out in the window; zero, negative and huge values leave the connect pending.
TEST_P(TimeoutEdges, ConnectTimeout) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  const SocketAddress any = SocketAddress::loopback_v4(0);
  ASSERT_EQ(::bind(listener.get(), any.native(), any.length()), 0);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  const SocketAddress to = *SocketAddress::local_of(listener.get());
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 3; ++i) fillers.push_back(connect_client(to));
  const auto edges = duration_edges();
  std::vector<ServiceLog*> logs;
  {
    Connector connector(r());
    for (const DurationEdge& e : edges) {
      logs.push_back(&new_log());
      ASSERT_FALSE(connector.connect(std::make_unique<TestService>(r(), UniqueFd(), *logs.back()),
                                     to, e.value))
          << e;
    }
    ASSERT_TRUE(run_window(milliseconds(30)));
    for (std::size_t i = 0; i < edges.size(); ++i) {
      if (logs[i]->opened > 0 || (!logs[i]->reasons.empty() && !logs[i]->reasons[0])) {
        GTEST_SKIP() << "the kernel completed a handshake despite the full queue";
      }
    }
    for (std::size_t i = 0; i < edges.size(); ++i) {
      if (edges[i].value == Duration(1)) {
        ASSERT_EQ(logs[i]->closed, 1) << edges[i];
        EXPECT_EQ(logs[i]->reasons.at(0), std::errc::timed_out) << edges[i];
      } else {
        EXPECT_EQ(logs[i]->closed, 0)
            << edges[i] << " ended: "
            << (logs[i]->reasons.empty() ? std::string("?") : logs[i]->reasons[0].message());
      }
    }
    EXPECT_EQ(connector.pending(), edges.size() - 1);
  }  // the connector cancels what is pending
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].value == Duration(1)) continue;
    ASSERT_EQ(logs[i]->closed, 1) << edges[i];
    EXPECT_EQ(logs[i]->reasons.at(0), std::errc::operation_canceled) << edges[i];
  }
  EXPECT_EQ(r().timer_count(), 0U);
}

INSTANTIATE_TEST_SUITE_P(Targets, TimeoutEdges, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

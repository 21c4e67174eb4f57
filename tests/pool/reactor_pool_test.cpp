// ReactorPool: post_to runs on the chosen reactor's thread, end_event_loop stops every thread
// (also before start and from a hook), and an echo service spread over the pool (hand-off from
// one acceptor, or one SO_REUSEPORT acceptor per reactor) returns every byte intact. Runs on every
// conformance backend.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/hand_off.hpp"
#include "reactor/reactor_pool.hpp"
#include "test_support.hpp"

namespace reactor::test {
namespace {

using namespace std::chrono_literals;

class ReactorPoolTest : public ::testing::TestWithParam<BackendParam> {};

TEST_P(ReactorPoolTest, PostToRunsOnThatReactorsThread) {
  constexpr std::size_t n = 4;
  ReactorPool pool(n, GetParam().make);
  ASSERT_FALSE(pool.start());
  std::mutex m;
  std::vector<std::set<std::thread::id>> seen(n);
  Tally done;
  constexpr int per_reactor = 50;
  // Several sender threads, so posts cross threads as well.
  std::vector<std::thread> senders;
  for (int s = 0; s < 2; ++s) {
    senders.emplace_back([&] {
      for (int k = 0; k < per_reactor / 2; ++k) {
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_FALSE(pool.post_to(i, [&, i] {
            {
              std::lock_guard lock(m);
              seen[i].insert(std::this_thread::get_id());
            }
            done.add();
          }));
        }
      }
    });
  }
  for (auto& t : senders) t.join();
  ASSERT_TRUE(done.wait_for(static_cast<int>(n) * per_reactor));
  pool.end_event_loop();
  pool.join();
  EXPECT_FALSE(pool.running());
  std::set<std::thread::id> all;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(seen[i].size(), 1U) << "reactor " << i << " ran posts on several threads";
    EXPECT_NE(*seen[i].begin(), std::this_thread::get_id());
    all.insert(*seen[i].begin());
  }
  EXPECT_EQ(all.size(), n) << "two reactors share a thread";
  EXPECT_EQ(pool.post_to(n, [] {}), std::error_code(errc::invalid_argument));
}

TEST_P(ReactorPoolTest, NextIsRoundRobin) {
  ReactorPool pool(3, GetParam().make);
  Reactor* first = &pool.next();
  Reactor* second = &pool.next();
  Reactor* third = &pool.next();
  EXPECT_NE(first, second);
  EXPECT_NE(second, third);
  EXPECT_NE(first, third);
  EXPECT_EQ(&pool.next(), first);
}

TEST_P(ReactorPoolTest, EndEventLoopFromAHookStopsEveryThread) {
  ReactorPool pool(4, GetParam().make);
  // Reactor 3 asks the whole pool to stop; run() (reactor 0 on this thread) must return.
  ASSERT_FALSE(pool.post_to(3, [&] { pool.end_event_loop(); }));
  auto finished = std::async(std::launch::async, [&] { return pool.run(); });
  ASSERT_EQ(finished.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(finished.get());
  EXPECT_FALSE(pool.running());
  EXPECT_FALSE(pool.first_error());
}

TEST_P(ReactorPoolTest, EndEventLoopBeforeStartHolds) {
  ReactorPool pool(2, GetParam().make);
  pool.end_event_loop();
  ASSERT_FALSE(pool.start());
  auto joined = std::async(std::launch::async, [&] { pool.join(); });
  EXPECT_EQ(joined.wait_for(10s), std::future_status::ready);
}

// Each run has new threads: every reactor must serve them (io_uring binds its ring to the
// thread that used it first, see io_uring_backend_test).
TEST_P(ReactorPoolTest, RunsAgainAfterJoinOnNewThreads) {
  constexpr std::size_t n = 2;
  ReactorPool pool(n, GetParam().make);
  for (int round = 1; round <= 3; ++round) {
    Tally ran;
    ASSERT_FALSE(pool.start()) << "round " << round;
    // A posted job runs inside the reactor's loop: this run's thread has waited on it.
    for (std::size_t i = 0; i < n; ++i) ASSERT_FALSE(pool.post_to(i, [&] { ran.add(); }));
    const bool all_ran = ran.wait_for(static_cast<int>(n));
    pool.end_event_loop();
    pool.join();
    ASSERT_TRUE(all_ran) << "round " << round << ": " << pool.first_error().message();
    ASSERT_FALSE(pool.first_error()) << "round " << round << ": " << pool.first_error().message();
  }
}

// A stop that reached the reactors when no loop ran (requested before start(), so the threads
// never entered their loops) belonged to that run: afterwards a reactor's own loop runs normally.
TEST_P(ReactorPoolTest, AStopNoLoopSawDoesNotOutliveTheRun) {
  ReactorPool pool(2, GetParam().make);
  pool.end_event_loop();
  ASSERT_FALSE(pool.start());
  pool.join();
  for (std::size_t i = 0; i < pool.size(); ++i) {
    Reactor& r = pool.at(i);
    EXPECT_FALSE(r.event_loop_done()) << "reactor " << i;
    // Driven on this thread now: the loop must run the job, which then ends it.
    bool ran = false;
    ASSERT_FALSE(r.post([&] {
      ran = true;
      r.end_event_loop();
    }));
    ASSERT_FALSE(r.run_event_loop());
    EXPECT_TRUE(ran) << "reactor " << i << ": the loop returned without running";
  }
}

TEST_P(ReactorPoolTest, DestructorStopsAndJoins) {
  Tally ran;
  {
    ReactorPool pool(3, GetParam().make);
    ASSERT_FALSE(pool.start());
    for (std::size_t i = 0; i < 3; ++i) ASSERT_FALSE(pool.post_to(i, [&] { ran.add(); }));
    ASSERT_TRUE(ran.wait_for(3));
  }  // must not hang
  SUCCEED();
}

// ---- an echo service on the pool ---------------------------------------------------------------

struct Census {
  std::mutex mutex;
  std::set<Dispatcher*> reactors;  // where services ran
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
};

class PoolEcho final : public StreamHandler {
 public:
  PoolEcho(Dispatcher& r, UniqueFd fd, Census& census)
      : StreamHandler(r, std::move(fd)), census_(census) {}

 protected:
  void on_open() override {
    {
      std::lock_guard lock(census_.mutex);
      census_.reactors.insert(&reactor());
    }
    ++census_.opened;
  }
  void on_data(Buffer& input) override {
    send(input.view());
    input.clear();
  }
  void on_close(std::error_code) override { ++census_.closed; }

 private:
  Census& census_;
};

// A blocking loopback client: sends `payload` in pieces and reads the same bytes back.
bool echo_round_trip(std::uint16_t port, const std::string& payload) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return false;
  timeval tv{10, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const SocketAddress addr = SocketAddress::loopback_v4(port);
  if (::connect(s.get(), addr.native(), addr.length()) != 0) return false;
  std::string back;
  std::size_t sent = 0;
  char buf[8192];
  while (back.size() < payload.size()) {
    if (sent < payload.size()) {
      const std::size_t chunk = std::min<std::size_t>(4096, payload.size() - sent);
      const ssize_t n = ::send(s.get(), payload.data() + sent, chunk, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, sent < payload.size() ? MSG_DONTWAIT : 0);
    if (n == 0) return false;
    if (n < 0) {
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && sent < payload.size()) continue;
      return false;
    }
    back.append(buf, static_cast<std::size_t>(n));
  }
  return back == payload;
}

std::string pattern(int client, std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (client * 7 + i) % 26);
  return out;
}

void run_clients(std::uint16_t port, int clients, std::size_t bytes) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      if (echo_round_trip(port, pattern(c, bytes))) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), clients) << "some echoes came back wrong or not at all";
}

TEST_P(ReactorPoolTest, HandOffSpreadsConnectionsRoundRobin) {
  constexpr std::size_t n = 4;
  Census census;  // outlives the pool: services still open report to it when the pool ends
  ReactorPool pool(n, GetParam().make);
  // The acceptor lives on reactor 0; it must only be touched there, so open and close it there.
  std::unique_ptr<Acceptor<PoolEcho>> acceptor;
  acceptor = std::make_unique<Acceptor<PoolEcho>>(
      pool.at(0), hand_off<PoolEcho>(pool, [&](Reactor& r, UniqueFd fd, const SocketAddress&) {
        return std::make_unique<PoolEcho>(r, std::move(fd), census);
      }));
  ASSERT_FALSE(acceptor->open(SocketAddress::loopback_v4(0)));
  const std::uint16_t port = acceptor->local_address().port();
  ASSERT_FALSE(pool.start());
  constexpr int clients = 8;
  run_clients(port, clients, 64 * 1024);
  Tally gone;
  ASSERT_FALSE(pool.post_to(0, [&] {
    acceptor.reset();
    gone.add();
  }));
  ASSERT_TRUE(gone.wait_for(1));
  pool.end_event_loop();
  pool.join();
  EXPECT_EQ(census.opened.load(), clients);
  // Round-robin over 8 connections: every reactor served two of them.
  EXPECT_EQ(census.reactors.size(), n);
}

TEST_P(ReactorPoolTest, ReusePortAcceptorPerReactor) {
  constexpr std::size_t n = 3;
  Census census;  // outlives the pool: services still open report to it when the pool ends
  ReactorPool pool(n, GetParam().make);
  AcceptorOptions options;
  options.reuse_port = true;
  std::vector<std::unique_ptr<Acceptor<PoolEcho>>> acceptors;
  std::uint16_t port = 0;
  for (std::size_t i = 0; i < n; ++i) {
    acceptors.push_back(std::make_unique<Acceptor<PoolEcho>>(
        pool.at(i),
        [&](Dispatcher& r, UniqueFd fd, const SocketAddress&) {
          return std::make_unique<PoolEcho>(r, std::move(fd), census);
        },
        options));
    ASSERT_FALSE(acceptors.back()->open(SocketAddress::loopback_v4(port)));
    port = acceptors.back()->local_address().port();
  }
  ASSERT_FALSE(pool.start());
  constexpr int clients = 12;
  run_clients(port, clients, 16 * 1024);
  Tally gone;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_FALSE(pool.post_to(i, [&, i] {
      acceptors[i].reset();
      gone.add();
    }));
  }
  ASSERT_TRUE(gone.wait_for(static_cast<int>(n)));
  pool.end_event_loop();
  pool.join();
  EXPECT_EQ(census.opened.load(), clients);
  // The kernel's hash decides who gets which connection, so only "served by the pool" is
  // certain; every connection landed on one of its reactors.
  for (Dispatcher* r : census.reactors) {
    bool ours = false;
    for (std::size_t i = 0; i < n; ++i) ours = ours || r == &pool.at(i);
    EXPECT_TRUE(ours);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorPoolTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

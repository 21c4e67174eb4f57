// io_uring-specific behaviour: honest availability, the explicit-request error, the threads that
// may use a single-issuer ring (one after another), and files released at remove(). Also the
// reactor-level level-triggered check on both new backends: a handler that reads one byte per
// callback.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <poll.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include "new_backends.hpp"
#include "test_support.hpp"

namespace reactor::test {
namespace {

using namespace std::chrono_literals;

// Skips (visibly, with the reason) unless io_uring works here; else returns the backend.
#define REQUIRE_IO_URING(var)     \
  std::string why_;               \
  auto var = make_io_uring(why_); \
  if (!(var)) GTEST_SKIP() << "io_uring skipped: " << why_;

TEST(IoUringAvailability, FactoryAgreesWithBackendAvailable) {
  std::unique_ptr<Demultiplexer> d;
  const std::error_code ec = make_demultiplexer(Backend::io_uring, d);
  if (backend_available(Backend::io_uring)) {
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(d->kind(), Backend::io_uring);
    bool listed = false;
    for (Backend b : available_backends()) listed = listed || b == Backend::io_uring;
    EXPECT_TRUE(listed);
  } else {
    EXPECT_EQ(ec, make_error_code(errc::backend_unavailable));
    EXPECT_EQ(d, nullptr);
  }
}

TEST(IoUringAvailability, ExplicitRequestFailsClearlyOrWorks) {
  if (backend_available(Backend::io_uring)) {
    Reactor r(Backend::io_uring);
    EXPECT_EQ(r.backend(), Backend::io_uring);
    return;
  }
  try {
    Reactor r(Backend::io_uring);
    FAIL() << "a Reactor was built on an unavailable io_uring";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::backend_unavailable));
    EXPECT_NE(std::string(e.what()).find("not available"), std::string::npos) << e.what();
  }
  std::string why;
  (void)make_io_uring(why);
  GTEST_SKIP() << "io_uring unavailable, checked the error path only: " << why;
}

TEST(IoUringAvailability, BestStaysEpollUnlessOverridden) {
  if (std::getenv("REACTOR_BACKEND") != nullptr) GTEST_SKIP() << "REACTOR_BACKEND is set";
  std::unique_ptr<Demultiplexer> d;
  ASSERT_FALSE(make_demultiplexer(Backend::best, d));
  EXPECT_EQ(d->kind(), REACTOR_HAVE_EPOLL ? Backend::epoll : Backend::poll);
}

#if REACTOR_HAVE_IO_URING
TEST(IoUringRing, UsesSingleIssuerWithDeferredTaskRunWhereTheKernelHasIt) {
  REQUIRE_IO_URING(d);
  const unsigned flags = static_cast<IoUringDemux&>(*d).setup_flags();
  // 6.1+ has both; an older kernel falls back to a plain ring, which is allowed but worth seeing.
  if ((flags & IORING_SETUP_DEFER_TASKRUN) == 0) GTEST_SKIP() << "kernel fell back to plain ring";
  EXPECT_NE(flags & IORING_SETUP_SINGLE_ISSUER, 0U);
}
#endif

// The ring starts disabled and binds to the first thread that submits, so the common pattern
// "build the Reactor, then run its loop on a worker thread" works with a single-issuer ring.
TEST(IoUringRing, BuiltOnOneThreadRunOnAnother) {
  REQUIRE_IO_URING(d);
  Pipe p;
  ASSERT_FALSE(d->add(p.r.get(), EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "x"));
  std::size_t n = 0;
  std::error_code ec;
  std::array<ReadyEvent, 4> ready{};
  std::thread loop([&] { ec = d->wait(ready, 5s, n); });
  loop.join();
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(n, 1U);
  EXPECT_EQ(ready[0].fd, p.r.get());
}

// A Reactor may be run by one thread after another (a ReactorPool started again, a PoolExecutor
// after the pool's own threads). The kernel binds a single-issuer ring to the first thread and
// refuses every other with EEXIST, so the backend must move to the new thread, with its
// watches, whether the old one has exited or merely stopped using it.
TEST(IoUringRing, ServesANewThreadAfterTheFirstHasExited) {
  REQUIRE_IO_URING(d);
  Pipe p;
  ASSERT_FALSE(d->add(p.r.get(), EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "x"));
  std::array<ReadyEvent, 4> ready{};
  std::size_t n = 0;
  std::error_code ec;
  std::thread first([&] { ec = d->wait(ready, 5s, n); });
  first.join();
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(n, 1U);
  for (int round = 0; round < 2; ++round) {  // two more threads, one after the other
    n = 0;
    std::thread next([&] { ec = d->wait(ready, 5s, n); });
    next.join();
    ASSERT_FALSE(ec) << "round " << round << ": " << ec.message();
    ASSERT_EQ(n, 1U) << "the byte is still unread: level-triggered";
    EXPECT_EQ(ready[0].fd, p.r.get());
  }
}

TEST(IoUringRing, ServesAnotherThreadWhileTheFirstIsAlive) {
  REQUIRE_IO_URING(d);
  Pipe p;
  SocketPair s;
  ASSERT_FALSE(d->add(p.r.get(), EventMask::read));
  ASSERT_FALSE(d->add(s.a.get(), EventMask::read));
  std::array<ReadyEvent, 4> ready{};
  std::size_t n = 0;
  std::error_code ec;
  std::promise<void> release;
  std::promise<void> waited;
  std::thread first([&] {
    ec = d->wait(ready, 0ns, n);  // binds the ring and arms both polls
    waited.set_value();
    release.get_future().wait();  // alive, but no longer using the backend
  });
  // Lets the first thread end however this test leaves.
  struct Release {
    std::promise<void>& release;
    std::thread& thread;
    ~Release() {
      release.set_value();
      thread.join();
    }
  } release_at_end{release, first};
  ASSERT_EQ(waited.get_future().wait_for(5s), std::future_status::ready);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, 0U);
  // This thread modifies, waits and removes now.
  ASSERT_FALSE(d->modify(p.r.get(), EventMask::read | EventMask::write));
  ASSERT_TRUE(put(p.w.get(), "x"));
  ec = d->wait(ready, 5s, n);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, 1U);
  EXPECT_EQ(ready[0].fd, p.r.get());
  // The removed socket's file must not stay pinned by a poll of the first thread's ring: its
  // peer sees end of file once it is closed (bounded wait; the old ring is torn down
  // asynchronously by the kernel).
  EXPECT_FALSE(d->remove(s.a.get()));
  s.a.reset();
  pollfd pfd{s.b.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 5000), 1) << "peer did not see end of file";
  char c = 0;
  EXPECT_EQ(::recv(s.b.get(), &c, 1, MSG_DONTWAIT), 0);
}

// A poll request pins its file: remove() must let it go at once, or a socket closed after
// remove() would not show end of file to its peer until the reactor's next wait.
TEST(IoUringRing, RemoveReleasesTheFileImmediately) {
  REQUIRE_IO_URING(d);
  SocketPair s;
  ASSERT_FALSE(d->add(s.a.get(), EventMask::read));
  std::array<ReadyEvent, 4> ready{};
  std::size_t n = 0;
  ASSERT_FALSE(d->wait(ready, 0ns, n));  // the poll is in flight now
  ASSERT_FALSE(d->remove(s.a.get()));
  s.a.reset();
  char c = 0;
  EXPECT_EQ(::recv(s.b.get(), &c, 1, MSG_DONTWAIT), 0) << "peer did not see end of file";
}

// A handler that reads one byte per callback on a reactor running each new backend: ten bytes,
// ten callbacks. An edge-triggered backend (e.g. multishot poll) would stop after the first.
class OneBytePerCallback : public EventHandler {
 public:
  explicit OneBytePerCallback(Handle h) : handle_(h) {}
  Handle get_handle() const override { return handle_; }
  int handle_input(Handle h) override {
    char c = 0;
    if (::read(h, &c, 1) == 1) got += c;
    ++calls;
    return 0;
  }
  std::string got;
  int calls = 0;

 private:
  Handle handle_;
};

class ReactorOnNewBackend : public ::testing::TestWithParam<NewBackend> {};

TEST_P(ReactorOnNewBackend, HandlerReadingOneBytePerCallbackIsCalledForEveryByte) {
  std::string why;
  auto d = GetParam().make(why);
  if (!d) GTEST_SKIP() << GetParam().name << " skipped: " << why;
  Reactor r(std::move(d));
  SocketPair s;
  OneBytePerCallback h(s.a.get());
  ASSERT_FALSE(r.register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(s.b.get(), "abcdefghij"));
  ASSERT_TRUE(run_until(
      r, [&] { return h.got.size() == 10; }, std::chrono::seconds(5)))
      << "got only \"" << h.got << "\"";
  EXPECT_EQ(h.got, "abcdefghij");
  EXPECT_EQ(h.calls, 10);
  ASSERT_FALSE(r.remove_handler(&h, EventMask::read, CloseHook::skip));
}

INSTANTIATE_TEST_SUITE_P(New, ReactorOnNewBackend, ::testing::ValuesIn(new_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

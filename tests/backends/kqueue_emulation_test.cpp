// The test-only kqueue emulation itself: it must behave like the BSD API in what the kqueue
// backend relies on, and refuse loudly what it does not emulate.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/event.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "test_support.hpp"

namespace reactor::test {
namespace {

class KqueueEmulation : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(kq_.valid()); }

  // One change with EV_RECEIPT; returns the errno the receipt carries.
  int change(int fd, short filter, unsigned flags) {
    struct kevent ch {};
    struct kevent out {};
    EV_SET(&ch, static_cast<uintptr_t>(fd), filter, flags | EV_RECEIPT, 0, 0, &marker_);
    EXPECT_EQ(kevent(kq_.get(), &ch, 1, &out, 1, nullptr), 1);
    EXPECT_NE(out.flags & EV_ERROR, 0U);
    return static_cast<int>(out.data);
  }

  // Waits at most `ms` milliseconds; returns the number of events.
  int wait(struct kevent* out, int n, long ms) {
    const timespec ts{ms / 1000, (ms % 1000) * 1000000};
    return kevent(kq_.get(), nullptr, 0, out, n, &ts);
  }

  UniqueFd kq_{kqueue()};
  int marker_ = 0;
};

TEST_F(KqueueEmulation, ReadAndWriteFiltersAreSeparateEvents) {
  SocketPair s;
  ASSERT_EQ(change(s.a.get(), EVFILT_READ, EV_ADD), 0);
  ASSERT_EQ(change(s.a.get(), EVFILT_WRITE, EV_ADD), 0);
  ASSERT_TRUE(put(s.b.get(), "x"));
  struct kevent out[4]{};
  ASSERT_EQ(wait(out, 4, 1000), 2);
  EXPECT_NE(out[0].filter, out[1].filter);
  for (const auto& ev : out) {
    if (ev.filter == 0) continue;
    EXPECT_EQ(ev.ident, static_cast<uintptr_t>(s.a.get()));
    EXPECT_EQ(ev.udata, &marker_) << "udata must come back as registered";
  }
}

TEST_F(KqueueEmulation, DeletingOneFilterKeepsTheOther) {
  SocketPair s;
  ASSERT_EQ(change(s.a.get(), EVFILT_READ, EV_ADD), 0);
  ASSERT_EQ(change(s.a.get(), EVFILT_WRITE, EV_ADD), 0);
  ASSERT_EQ(change(s.a.get(), EVFILT_WRITE, EV_DELETE), 0);
  struct kevent out[4]{};
  EXPECT_EQ(wait(out, 4, 20), 0);
  ASSERT_TRUE(put(s.b.get(), "x"));
  ASSERT_EQ(wait(out, 4, 1000), 1);
  EXPECT_EQ(out[0].filter, EVFILT_READ);
}

TEST_F(KqueueEmulation, ErrorsComeBackAsEvErrorEntries) {
  Pipe p;
  const int closed = p.r.release();
  ::close(closed);
  EXPECT_EQ(change(closed, EVFILT_READ, EV_ADD), EBADF);
  EXPECT_EQ(change(p.w.get(), EVFILT_WRITE, EV_DELETE), ENOENT);
  // Without room in the event list the call itself fails with the errno.
  struct kevent ch {};
  EV_SET(&ch, static_cast<uintptr_t>(closed), EVFILT_READ, EV_ADD, 0, 0, nullptr);
  errno = 0;
  EXPECT_EQ(kevent(kq_.get(), &ch, 1, nullptr, 0, nullptr), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(KqueueEmulation, UnemulatedFlagsAndFiltersAreRefused) {
  Pipe p;
  EXPECT_EQ(change(p.r.get(), EVFILT_READ, EV_ADD | EV_CLEAR), EINVAL);
  EXPECT_EQ(change(p.r.get(), EVFILT_READ, EV_ADD | EV_ONESHOT), EINVAL);
  EXPECT_EQ(change(p.r.get(), EVFILT_READ, EV_DISABLE), EINVAL);
  EXPECT_EQ(change(p.r.get(), -7 /* EVFILT_TIMER on FreeBSD */, EV_ADD), EINVAL);
}

TEST_F(KqueueEmulation, HangupIsEofOnTheReadFilter) {
  SocketPair s;
  ASSERT_EQ(change(s.a.get(), EVFILT_READ, EV_ADD), 0);
  s.b.reset();
  struct kevent out[2]{};
  ASSERT_EQ(wait(out, 2, 1000), 1);
  EXPECT_EQ(out[0].filter, EVFILT_READ);
  EXPECT_NE(out[0].flags & EV_EOF, 0U);
}

// A regular file, which epoll refuses, behaves as a BSD vnode: read fires only while the offset
// is short of the end (the reason the kqueue backend keeps regular files to itself), write
// always fires, and a wait with nothing firing waits.
TEST_F(KqueueEmulation, RegularFileFollowsBsdVnodeSemantics) {
  char path[] = "/tmp/kqemuXXXXXX";
  UniqueFd file(::mkostemp(path, O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  ::unlink(path);
  ASSERT_TRUE(put(file.get(), "abc"));
  ASSERT_EQ(::lseek(file.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(change(file.get(), EVFILT_READ, EV_ADD), 0);
  ASSERT_EQ(change(file.get(), EVFILT_WRITE, EV_ADD), 0);
  struct kevent out[4]{};
  ASSERT_EQ(wait(out, 4, 1000), 2);
  EXPECT_NE(out[0].filter, out[1].filter);
  EXPECT_EQ(out[0].udata, &marker_);
  EXPECT_EQ(take(file.get()), "abc");  // to the end of the file
  ASSERT_EQ(wait(out, 4, 1000), 1);
  EXPECT_EQ(out[0].filter, EVFILT_WRITE);
  ASSERT_EQ(change(file.get(), EVFILT_WRITE, EV_DELETE), 0);
  const auto start = Clock::now();
  EXPECT_EQ(wait(out, 4, 20), 0);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(20));
  ASSERT_EQ(::lseek(file.get(), 1, SEEK_SET), 1);  // short of the end again
  ASSERT_EQ(wait(out, 4, 1000), 1);
  EXPECT_EQ(out[0].filter, EVFILT_READ);
  ASSERT_EQ(change(file.get(), EVFILT_READ, EV_DELETE), 0);
  EXPECT_EQ(wait(out, 4, 0), 0);
}

TEST_F(KqueueEmulation, TimeoutHasSubMillisecondResolution) {
  struct kevent out[1]{};
  const timespec ts{0, 300000};  // 0.3 ms: epoll_wait would round it to 1 ms
  const auto start = Clock::now();
  EXPECT_EQ(kevent(kq_.get(), nullptr, 0, out, 1, &ts), 0);
  const auto took = Clock::now() - start;
  EXPECT_GE(took, std::chrono::microseconds(300));
  EXPECT_LT(took, std::chrono::milliseconds(200));
}

}  // namespace
}  // namespace reactor::test

// Regular files, which the kernel calls always ready (poll and select report them readable and
// writable at once, epoll refuses them with EPERM, kqueue reads them only up to end of file):
// every backend reports them ready for the interest asked on every wait, and never for except.
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "conformance.hpp"

namespace reactor::test {
namespace {

using std::chrono::milliseconds;
using RegularFileConformance = Conformance;

// An unlinked temporary regular file holding `content`, open for reading and writing at offset 0.
UniqueFd regular_file(const std::string& content) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/reactorXXXXXX";
  UniqueFd fd(::mkostemp(path.data(), O_CLOEXEC));
  if (!fd.valid()) return fd;
  ::unlink(path.c_str());
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::lseek(fd.get(), 0, SEEK_SET) != 0) {
    fd.reset();
  }
  return fd;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// Waits `timeout` in handle_events and checks that it really waited and dispatched nothing:
// nothing counts as ready, so the wait must not return early (or spin).
void expect_quiet_wait(Dispatcher& r, milliseconds timeout) {
  const auto start = Clock::now();
  auto n = r.handle_events(timeout);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(Clock::now() - start, timeout);
}

TEST_P(RegularFileConformance, ReadableOnEveryWaitUntilReadToEndOfFile) {
  const std::string content = pattern(10000);
  UniqueFd file = regular_file(content);
  ASSERT_TRUE(file.valid());
  Probe h(file.get());
  std::string got;
  bool eof = false;
  h.on_input = [&](Handle fd) {
    char buf[1000];
    const ssize_t n = ::read(fd, buf, sizeof buf);  // one read per call: level-triggered
    if (n > 0) {
      got.append(buf, static_cast<std::size_t>(n));
      return 0;
    }
    eof = n == 0;
    return -1;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 1; }));
  EXPECT_TRUE(eof);
  EXPECT_EQ(got, content);
  EXPECT_EQ(h.inputs, 11);  // ten reads of data and the one that found the end
  EXPECT_EQ(h.outputs, 0);
  EXPECT_TRUE(has(h.closed_mask, EventMask::read));
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(RegularFileConformance, WritableOnEveryWaitAlongsideReadable) {
  UniqueFd file = regular_file("");
  ASSERT_TRUE(file.valid());
  Probe h(file.get());
  h.on_output = [&](Handle fd) {
    if (::write(fd, "w", 1) != 1) return -1;
    return h.outputs == 5 ? -1 : 0;  // the fifth write ends write interest
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read | EventMask::write));
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 1 && h.inputs >= 2; }));
  EXPECT_EQ(h.outputs, 5);
  EXPECT_EQ(h.closed_mask, EventMask::write);
  EXPECT_EQ(r().interest(file.get()), EventMask::read);  // reading goes on
  struct stat st {};
  ASSERT_EQ(::fstat(file.get(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
  ASSERT_FALSE(r().remove_handler(&h, EventMask::all_io));
  EXPECT_EQ(h.closes, 2);
}

TEST_P(RegularFileConformance, SuspendResumeInterestChangesAndRemoveWork) {
  UniqueFd file = regular_file(pattern(100));
  ASSERT_TRUE(file.valid());
  Probe h(file.get());
  h.on_input = [&](Handle fd) {
    char c = 0;
    return ::read(fd, &c, 1) == 1 ? 0 : -1;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs >= 1; }));

  ASSERT_FALSE(r().suspend_handler(&h));
  int inputs = h.inputs;
  expect_quiet_wait(r(), milliseconds(20));
  EXPECT_EQ(h.inputs, inputs);
  ASSERT_FALSE(r().resume_handler(&h));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs > inputs; }));

  // Read to write: the other hook, and the first one no more.
  ASSERT_FALSE(r().set_interest(file.get(), EventMask::write));
  inputs = h.inputs;
  ASSERT_TRUE(run_until(r(), [&] { return h.outputs >= 2; }));
  EXPECT_EQ(h.inputs, inputs);
  ASSERT_FALSE(r().set_interest(file.get(), EventMask::none));
  const int outputs = h.outputs;
  expect_quiet_wait(r(), milliseconds(20));
  EXPECT_EQ(h.outputs, outputs);
  ASSERT_FALSE(r().set_interest(file.get(), EventMask::read));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs > inputs; }));

  ASSERT_FALSE(r().remove_handler(&h, EventMask::all_io));
  EXPECT_EQ(h.closes, 1);
  EXPECT_EQ(r().handler_count(), 0U);
  inputs = h.inputs;
  expect_quiet_wait(r(), milliseconds(20));  // gone from the backend too: nothing ready
  EXPECT_EQ(h.inputs, inputs);
}

TEST_P(RegularFileConformance, ExceptInterestIsNeverReported) {
  UniqueFd file = regular_file(pattern(10));
  ASSERT_TRUE(file.valid());
  Probe h(file.get());
  ASSERT_FALSE(r().register_handler(&h, EventMask::except));
  expect_quiet_wait(r(), milliseconds(20));
  EXPECT_EQ(h.exceptions, 0);
}

// A wait with an always-ready file among other descriptors returns at once, and the others are
// still served while the file stays ready.
TEST_P(RegularFileConformance, WaitDoesNotBlockAndOthersAreNotStarved) {
  UniqueFd file = regular_file(pattern(10));
  ASSERT_TRUE(file.valid());
  Pipe p;
  Probe always(file.get());  // never reads: ready for ever
  Probe pipe_reader(p.r.get());
  pipe_reader.on_input = [&](Handle fd) {
    take(fd);
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&pipe_reader, EventMask::read));
  ASSERT_FALSE(r().register_handler(&always, EventMask::read));
  const auto start = Clock::now();
  auto n = r().handle_events(std::chrono::seconds(20));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_GE(*n, 1U);
  EXPECT_GE(always.inputs, 1);
  EXPECT_EQ(pipe_reader.inputs, 0);
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return pipe_reader.inputs == 1; }));
  EXPECT_GE(always.inputs, 2);
}

// A ThreadPoolReactor accepts registrations from any thread while its leader waits: a regular
// file registered then must wake the leader (epoll never sees the file, so epoll_ctl cannot).
TEST_P(RegularFileConformance, RegisteringFromAnotherThreadWakesTheWaitingLeader) {
  if (!is_thread_pool()) GTEST_SKIP() << "a Reactor is used from its loop thread only";
  UniqueFd file = regular_file("abc");
  ASSERT_TRUE(file.valid());
  std::mutex m;
  std::condition_variable cv;
  bool closed = false;
  Probe h(file.get());
  h.on_input = [&](Handle fd) {
    char buf[16];
    return ::read(fd, buf, sizeof buf) > 0 ? 0 : -1;
  };
  h.on_close = [&](Handle, EventMask) {
    std::lock_guard lock(m);
    closed = true;
    cv.notify_all();
  };
  std::atomic<bool> running{false};
  ASSERT_FALSE(r().post([&] { running = true; }));
  std::thread loop([&] { (void)r().run_event_loop(); });
  while (!running.load()) std::this_thread::yield();  // the loop is up; it waits next
  // No ASSERT until the loop thread is joined: returning early would leave it running.
  const std::error_code registered = r().register_handler(&h, EventMask::read);
  bool woke = false;
  if (!registered) {
    std::unique_lock lock(m);
    woke = cv.wait_for(lock, std::chrono::seconds(5), [&] { return closed; });
  }
  r().end_event_loop();
  loop.join();
  ASSERT_FALSE(registered) << registered.message();
  EXPECT_TRUE(woke) << "the registration did not wake the waiting leader";
  EXPECT_EQ(h.inputs, 2);  // "abc", then the end of the file
}

INSTANTIATE_TEST_SUITE_P(Backends, RegularFileConformance,
                         ::testing::ValuesIn(conformance_targets()), backend_param_name);

}  // namespace
}  // namespace reactor::test

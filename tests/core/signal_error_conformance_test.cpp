// Signals dispatched by the loop, EINTR, and the error contract, on every backend.
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "conformance.hpp"

namespace reactor::test {
namespace {

using SignalConformance = Conformance;
using ErrorConformance = Conformance;

TEST_P(SignalConformance, SignalIsDispatchedOnTheLoopThread) {
  Probe h;
  const auto loop_thread = std::this_thread::get_id();
  bool on_loop_thread = false;
  h.on_signal = [&](int) {
    on_loop_thread = std::this_thread::get_id() == loop_thread;
    return 0;
  };
  ASSERT_FALSE(r().register_signal(SIGUSR1, &h));
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  ASSERT_TRUE(run_until(r(), [&] { return h.signals >= 1; }));
  EXPECT_EQ(h.last_signal, SIGUSR1);
  EXPECT_TRUE(on_loop_thread);
  EXPECT_FALSE(r().remove_signal(SIGUSR1, &h));
}

TEST_P(SignalConformance, EveryWatcherInEveryReactorHearsTheSignal) {
  Probe a;
  Probe b;
  Probe c;
  Reactor other(GetParam().make());
  ASSERT_FALSE(r().register_signal(SIGUSR2, &a));
  ASSERT_FALSE(r().register_signal(SIGUSR2, &b));
  ASSERT_FALSE(other.register_signal(SIGUSR2, &c));
  EXPECT_EQ(r().register_signal(SIGUSR2, &a), errc::already_registered);
  ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
  ASSERT_TRUE(run_until(r(), [&] { return a.signals == 1 && b.signals == 1; }));
  ASSERT_TRUE(run_until(other, [&] { return c.signals == 1; }));
  EXPECT_FALSE(r().remove_signal(SIGUSR2, &a));
  EXPECT_FALSE(r().remove_signal(SIGUSR2, &b));
  EXPECT_FALSE(other.remove_signal(SIGUSR2, &c));
}

TEST_P(SignalConformance, NegativeReturnUnsubscribesAndRestoresTheOldDisposition) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &saved), 0);
  Probe h;
  h.on_signal = [](int) { return -1; };
  ASSERT_FALSE(r().register_signal(SIGUSR1, &h));
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  ASSERT_TRUE(run_until(r(), [&] { return h.signals == 1; }));
  EXPECT_EQ(r().remove_signal(SIGUSR1, &h), errc::not_registered);
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_IGN);  // the disposition before the reactor is back
  ::sigaction(SIGUSR1, &saved, nullptr);
}

TEST_P(SignalConformance, UncatchableSignalsAreRefused) {
  Probe h;
  EXPECT_EQ(r().register_signal(SIGKILL, &h), errc::invalid_argument);
  EXPECT_EQ(r().register_signal(SIGSTOP, &h), errc::invalid_argument);
  EXPECT_EQ(r().register_signal(0, &h), errc::invalid_argument);
  EXPECT_EQ(r().register_signal(SIGUSR1, nullptr), errc::invalid_argument);
}

TEST_P(SignalConformance, DestroyedHandlerStopsWatching) {
  Probe survivor;
  {
    Probe doomed;
    ASSERT_FALSE(r().register_signal(SIGUSR1, &doomed));
    ASSERT_FALSE(r().register_signal(SIGUSR1, &survivor));
  }
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  ASSERT_TRUE(run_until(r(), [&] { return survivor.signals == 1; }));
  EXPECT_FALSE(r().remove_signal(SIGUSR1, &survivor));
}

// A signal without SA_RESTART interrupting every wait: handle_events must retry, honour its
// timeout, and report no error.
TEST_P(SignalConformance, WaitRetriesAfterEintr) {
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: waits fail with EINTR
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGALRM, &action, &saved), 0);
  itimerval every_ms{{0, 1000}, {0, 1000}};
  ASSERT_EQ(::setitimer(ITIMER_REAL, &every_ms, nullptr), 0);
  Pipe p;
  Probe h(p.r.get());
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  const auto start = Clock::now();
  auto n = r().handle_events(milliseconds(50));
  const auto elapsed = Clock::now() - start;
  itimerval off{};
  ::setitimer(ITIMER_REAL, &off, nullptr);
  ::sigaction(SIGALRM, &saved, nullptr);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(elapsed, milliseconds(50));
}

TEST_P(ErrorConformance, MisuseGetsAClearError) {
  Pipe p;
  Probe h(p.r.get());
  Probe other(p.r.get());
  EXPECT_EQ(r().register_handler(nullptr, EventMask::read), errc::invalid_argument);
  EXPECT_EQ(r().register_handler(-1, &h, EventMask::read), errc::invalid_handle);
  EXPECT_EQ(r().register_handler(&h, EventMask::none), errc::invalid_argument);
  EXPECT_EQ(r().register_handler(&h, EventMask::invalid), errc::invalid_argument);
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  EXPECT_EQ(r().register_handler(&h, EventMask::write), errc::already_registered);
  EXPECT_EQ(r().register_handler(&other, EventMask::read), errc::already_registered);
  EXPECT_EQ(r().remove_handler(&other), errc::not_registered);
  EXPECT_EQ(r().remove_handler(p.r.get(), EventMask::write), errc::not_registered);
  EXPECT_EQ(r().remove_handler(Handle{-3}), errc::invalid_handle);
  EXPECT_EQ(r().remove_handler(Handle{4000}), errc::not_registered);
  EXPECT_EQ(r().set_interest(Handle{4000}, EventMask::read), errc::not_registered);
  EXPECT_EQ(r().notify(nullptr), errc::invalid_argument);
  EXPECT_EQ(r().post({}), errc::invalid_argument);
  EXPECT_FALSE(r().remove_handler(&h));
  EXPECT_EQ(h.closes, 1);
  EXPECT_EQ(r().remove_handler(&h), errc::not_registered);
  EXPECT_EQ(h.closes, 1);
  // The error codes compare equal to the portable conditions too.
  EXPECT_EQ(std::error_code(errc::already_registered), std::errc::file_exists);
  EXPECT_FALSE(std::error_code(errc::not_registered).message().empty());
}

TEST_P(ErrorConformance, ClosedDescriptorIsRefused) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  Probe h(fds[0]);
  EXPECT_EQ(r().register_handler(&h, EventMask::read), errc::invalid_handle);
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST(SelectBackend, RefusesHandlesBeyondFdSetSize) {
  Reactor r(Backend::select);
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_max <= FD_SETSIZE + 8) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low";
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
  Pipe p;
  const int high = FD_SETSIZE + 5;
  ASSERT_EQ(::dup2(p.r.get(), high), high);
  UniqueFd owned(high);
  Probe h(high);
  EXPECT_EQ(r.register_handler(&h, EventMask::read), errc::handle_out_of_range);
  EXPECT_EQ(r.handler_count(), 0U);
}

// Sets REACTOR_BACKEND for one scope and puts back what the run was given (CI runs the whole
// suite with REACTOR_BACKEND=io_uring and =poll: later tests must still see that).
class ScopedBackendEnv {
 public:
  ScopedBackendEnv() {
    if (const char* v = std::getenv("REACTOR_BACKEND")) saved_ = v;
  }
  ~ScopedBackendEnv() {
    if (saved_) {
      ::setenv("REACTOR_BACKEND", saved_->c_str(), 1);
    } else {
      ::unsetenv("REACTOR_BACKEND");
    }
  }
  ScopedBackendEnv(const ScopedBackendEnv&) = delete;
  ScopedBackendEnv& operator=(const ScopedBackendEnv&) = delete;

 private:
  std::optional<std::string> saved_;
};

TEST(Backends, UnknownOrUnavailableBackendsAreReported) {
  ScopedBackendEnv restore;
  Backend b{};
  EXPECT_EQ(parse_backend("nonsense", b), errc::unknown_backend);
  EXPECT_FALSE(parse_backend("poll", b));
  EXPECT_EQ(b, Backend::poll);
  ::setenv("REACTOR_BACKEND", "nonsense", 1);
  try {
    Reactor r;
    ADD_FAILURE() << "a bad REACTOR_BACKEND must not be ignored";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), errc::unknown_backend);
  }
  ::setenv("REACTOR_BACKEND", "select", 1);
  {
    Reactor r;
    EXPECT_EQ(r.backend(), Backend::select);
  }
  ::unsetenv("REACTOR_BACKEND");
  {
    Reactor r(Backend::poll);
    EXPECT_EQ(r.backend(), Backend::poll);
  }
  for (Backend available : available_backends()) EXPECT_TRUE(backend_available(available));
}

// REACTOR_BACKEND as this run was started, read before any test runs.
const std::string run_backend = [] {
  const char* v = std::getenv("REACTOR_BACKEND");
  return std::string(v != nullptr ? v : "");
}();

// Runs after the test above (gtest keeps definition order): the backend this run was given must
// still be the default, or every later test here would silently run on epoll.
TEST(Backends, TheRunsDefaultBackendOutlivesTheEnvironmentTest) {
  if (run_backend.empty()) {
    GTEST_SKIP() << "REACTOR_BACKEND is not set (scripts/test.sh sets it for its io_uring and "
                    "poll passes)";
  }
  const char* now = std::getenv("REACTOR_BACKEND");
  ASSERT_NE(now, nullptr) << "REACTOR_BACKEND=" << run_backend << " was removed";
  EXPECT_EQ(std::string(now), run_backend);
  Backend wanted{};
  ASSERT_FALSE(parse_backend(run_backend, wanted)) << run_backend;
  Reactor r;
  EXPECT_EQ(r.backend(), wanted);
}

INSTANTIATE_TEST_SUITE_P(Backends, SignalConformance, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);
INSTANTIATE_TEST_SUITE_P(Backends, ErrorConformance, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

// Readiness, masks, suspend/resume and the hook return convention, on every backend.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>

#include "conformance.hpp"

namespace reactor::test {
namespace {

using IoConformance = Conformance;

// A loopback TCP listener on an ephemeral port.
struct Listener {
  UniqueFd fd{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  sockaddr_in addr{};
  Listener() {
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd.get(), 16), 0);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  }
  UniqueFd connect_nonblocking() const {
    UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int rc = ::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    EXPECT_TRUE(rc == 0 || errno == EINPROGRESS);
    return c;
  }
};

TEST_P(IoConformance, ReadableHandleCallsHandleInput) {
  Pipe p;
  Probe h(p.r.get());
  h.on_input = [&](Handle fd) { return take(fd).empty() ? -1 : 0; };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "ping"));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs == 1; }));
  EXPECT_EQ(h.last_handle, p.r.get());
  EXPECT_EQ(h.outputs, 0);
  EXPECT_EQ(h.closes, 0);
}

TEST_P(IoConformance, NothingReadyDispatchesNothing) {
  Pipe p;
  Probe h(p.r.get());
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  auto n = r().handle_events(Duration::zero());
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  const auto start = Clock::now();
  n = r().handle_events(milliseconds(30));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(Clock::now() - start, milliseconds(30));  // the wait is never cut short
  EXPECT_EQ(h.inputs, 0);
}

TEST_P(IoConformance, WritableHandleCallsHandleOutput) {
  SocketPair s;
  Probe h(s.a.get());
  ASSERT_FALSE(r().register_handler(&h, EventMask::write));
  ASSERT_TRUE(run_until(r(), [&] { return h.outputs >= 1; }));
  EXPECT_EQ(h.inputs, 0);
}

TEST_P(IoConformance, LevelTriggeredUntilDrained) {
  Pipe p;
  Probe h(p.r.get());
  std::string got;
  h.on_input = [&](Handle fd) {
    char c = 0;
    if (::read(fd, &c, 1) == 1) got.push_back(c);
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "abcde"));
  // One byte per callback: the reactor must keep reporting the handle until it is drained.
  ASSERT_TRUE(run_until(r(), [&] { return got.size() == 5; }));
  EXPECT_EQ(got, "abcde");
  EXPECT_EQ(h.inputs, 5);
  auto n = r().handle_events(milliseconds(20));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
}

TEST_P(IoConformance, InterestChangesTakeEffect) {
  SocketPair s;
  Probe h(s.a.get());
  h.on_input = drain;
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(s.b.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs == 1; }));
  EXPECT_EQ(h.outputs, 0);

  ASSERT_FALSE(r().add_interest(s.a.get(), EventMask::write));
  EXPECT_EQ(r().interest(s.a.get()), EventMask::read | EventMask::write);
  ASSERT_TRUE(run_until(r(), [&] { return h.outputs >= 1; }));

  ASSERT_FALSE(r().clear_interest(s.a.get(), EventMask::write));
  const int outputs = h.outputs;
  ASSERT_TRUE(r().handle_events(milliseconds(20)));
  EXPECT_EQ(h.outputs, outputs);

  // Silent but still registered: no events, and the handle is not free for others.
  ASSERT_FALSE(r().set_interest(s.a.get(), EventMask::none));
  ASSERT_TRUE(put(s.b.get(), "y"));
  ASSERT_TRUE(r().handle_events(milliseconds(20)));
  EXPECT_EQ(h.inputs, 1);
  Probe other(s.a.get());
  EXPECT_EQ(r().register_handler(&other, EventMask::read), errc::already_registered);
  ASSERT_FALSE(r().set_interest(s.a.get(), EventMask::read));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs == 2; }));
  EXPECT_EQ(h.closes, 0);
}

TEST_P(IoConformance, SuspendStopsDispatchUntilResume) {
  Pipe p;
  Probe h(p.r.get());
  h.on_input = drain;
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_FALSE(r().suspend_handler(&h));
  EXPECT_TRUE(r().is_suspended(p.r.get()));
  ASSERT_TRUE(put(p.w.get(), "data"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(10)));
  EXPECT_EQ(h.inputs, 0);
  ASSERT_FALSE(r().resume_handler(&h));
  EXPECT_FALSE(r().is_suspended(p.r.get()));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs == 1; }));
  EXPECT_EQ(r().suspend_handler(Handle{9999}), errc::not_registered);
}

TEST_P(IoConformance, AcceptMaskCallsHandleInput) {
  Listener l;
  Probe h(l.fd.get());
  UniqueFd accepted;
  h.on_input = [&](Handle fd) {
    accepted.reset(::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::accept));
  UniqueFd c = l.connect_nonblocking();
  ASSERT_TRUE(run_until(r(), [&] { return accepted.valid(); }));
  EXPECT_EQ(h.outputs, 0);
}

TEST_P(IoConformance, ConnectMaskCallsHandleOutput) {
  Listener l;
  UniqueFd c = l.connect_nonblocking();
  Probe h(c.get());
  int so_error = -1;
  h.on_output = [&](Handle fd) {
    socklen_t len = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    return -1;  // connect done: drop the connect interest
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::connect));
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 1; }));
  EXPECT_EQ(so_error, 0);
  EXPECT_EQ(h.closed_mask, EventMask::connect);
  EXPECT_EQ(h.outputs, 1);
}

TEST_P(IoConformance, OutOfBandDataCallsHandleException) {
  Listener l;
  UniqueFd c = l.connect_nonblocking();
  UniqueFd server;
  ASSERT_TRUE(run_until(r(), [&] {
    server.reset(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    return server.valid();
  }));
  Probe h(server.get());
  char urgent = 0;
  h.on_exception = [&](Handle fd) {
    // Read the urgent byte so the condition clears.
    if (::recv(fd, &urgent, 1, MSG_OOB) != 1) return -1;
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::except));
  ASSERT_TRUE(run_until(r(), [&] { return ::send(c.get(), "!", 1, MSG_OOB) == 1; }));
  ASSERT_TRUE(run_until(r(), [&] { return h.exceptions >= 1; }));
  EXPECT_EQ(urgent, '!');
  EXPECT_EQ(h.inputs, 0);
}

TEST_P(IoConformance, PeerHangupWakesReader) {
  SocketPair s;
  Probe h(s.a.get());
  ssize_t last = -2;
  h.on_input = [&](Handle fd) {
    char buf[16];
    last = ::read(fd, buf, sizeof buf);
    return last == 0 ? -1 : 0;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  s.b.reset();
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 1; }));
  EXPECT_EQ(last, 0);
  EXPECT_EQ(h.closed_mask, EventMask::read);
}

TEST_P(IoConformance, NegativeReturnRemovesThatEventAndCallsHandleCloseOnce) {
  SocketPair s;
  Probe h(s.a.get());
  h.on_output = [](Handle) { return -1; };
  h.on_input = drain;
  ASSERT_FALSE(r().register_handler(&h, EventMask::read | EventMask::write));
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 1; }));
  EXPECT_EQ(h.closed_mask, EventMask::write);
  EXPECT_EQ(r().interest(s.a.get()), EventMask::read);  // read stays registered
  EXPECT_EQ(r().handler_count(), 1U);
  h.on_input = [](Handle) { return -1; };
  ASSERT_TRUE(put(s.b.get(), "z"));
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 2; }));
  h.mark_final();
  EXPECT_EQ(h.closed_mask, EventMask::read | EventMask::write);
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(r().handler(s.a.get()), nullptr);
  ASSERT_TRUE(put(s.b.get(), "again"));
  ASSERT_TRUE(r().handle_events(milliseconds(20)));
  EXPECT_EQ(h.after_final, 0);
  EXPECT_EQ(h.closes, 2);
}

TEST_P(IoConformance, PositiveReturnCallsAgainWithoutStarvingOthers) {
  Pipe busy_pipe;
  Pipe other_pipe;
  Probe busy(busy_pipe.r.get());
  Probe other(other_pipe.r.get());
  std::vector<char> order;
  int budget = 5;
  busy.on_input = [&](Handle fd) {
    take(fd);
    order.push_back('b');
    if (budget == 5) put(other_pipe.w.get(), "2");  // the other becomes ready meanwhile
    return --budget > 0 ? 1 : 0;                    // "call me again" four times, with no new data
  };
  other.on_input = [&](Handle fd) {
    order.push_back('o');
    take(fd);
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&busy, EventMask::read));
  ASSERT_FALSE(r().register_handler(&other, EventMask::read));
  ASSERT_TRUE(put(busy_pipe.w.get(), "1"));
  ASSERT_TRUE(run_until(r(), [&] { return busy.inputs == 5 && other.inputs == 1; }));
  // The other handler got its turn before the busy one finished its repeats.
  const auto first_other = std::find(order.begin(), order.end(), 'o') - order.begin();
  EXPECT_LT(first_other, 4);
  ASSERT_TRUE(r().handle_events(milliseconds(20)));
  EXPECT_EQ(busy.inputs, 5);  // returned 0 at last: no more calls without data
}

TEST_P(IoConformance, ThousandsOfHandlersEachDispatchedOnce) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  // select cannot watch descriptors >= FD_SETSIZE; everything else gets thousands.
  const std::size_t wanted = is_select() ? 400 : 3000;
  const std::size_t count = std::min<std::size_t>(wanted, (lim.rlim_cur - 64) / 2);
  ASSERT_GE(count, 400U) << "RLIMIT_NOFILE too low for this test";
  std::vector<std::unique_ptr<Pipe>> pipes;
  std::vector<std::unique_ptr<Probe>> probes;
  int closes = 0;
  for (std::size_t i = 0; i < count; ++i) {
    pipes.push_back(std::make_unique<Pipe>());
    ASSERT_TRUE(pipes.back()->r.valid());
    probes.push_back(std::make_unique<Probe>(pipes.back()->r.get()));
    probes.back()->on_input = [](Handle fd) { return take(fd) == "x" ? -1 : 0; };
    probes.back()->on_close = [&](Handle, EventMask) { ++closes; };
    ASSERT_FALSE(r().register_handler(probes.back().get(), EventMask::read));
  }
  EXPECT_EQ(r().handler_count(), count);
  for (auto& p : pipes) ASSERT_TRUE(put(p->w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return closes == static_cast<int>(count); }));
  for (auto& p : probes) {
    EXPECT_EQ(p->inputs, 1);
    EXPECT_EQ(p->closes, 1);
  }
  EXPECT_EQ(r().handler_count(), 0U);
}

// An interest change the backend refuses (here: the descriptor was closed behind the
// reactor's back, which epoll and kqueue notice at once) is returned, and the registration keeps
// the interest it had: both reactors, every backend. Backends that cannot tell at that moment
// (select and poll keep the interest in user space, io_uring learns it from a completion) accept
// it and report the descriptor at the next wait, which ends the registration with handle_close.
// Either way the registration ends exactly once.
TEST_P(IoConformance, InterestChangeRefusedByTheBackendKeepsTheOldInterest) {
  for (const bool widen : {false, true}) {
    Pipe p;
    Probe h(p.r.get());
    ASSERT_FALSE(r().register_handler(&h, EventMask::read));
    const Handle fd = p.r.get();
    p.r.reset();  // closed without remove_handler
    const std::error_code ec = widen ? r().add_interest(fd, EventMask::write)
                                     : r().set_interest(fd, EventMask::read | EventMask::write);
    if (ec) {
      EXPECT_EQ(r().interest(fd), EventMask::read) << ec.message();
      EXPECT_EQ(r().handler(fd), &h);
      EXPECT_FALSE(r().remove_handler(fd));
    } else {
      EXPECT_TRUE(r().backend() == Backend::select || r().backend() == Backend::poll ||
                  r().backend() == Backend::io_uring)
          << "epoll and kqueue see a closed descriptor when its interest changes";
      ASSERT_TRUE(run_until(r(), [&] { return h.closes > 0; }));
    }
    EXPECT_EQ(h.closes, 1);
    EXPECT_EQ(h.inputs + h.outputs, 0);
    EXPECT_EQ(r().handler_count(), 0U);
  }
}

TEST_P(IoConformance, ClosedBehindTheReactorsBackNeitherCrashesNorSpins) {
  Pipe p;
  Probe h(p.r.get());
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  p.r.reset();  // closed without remove_handler: an application bug the reactor must survive
  std::size_t dispatched = 0;
  for (int i = 0; i < 5; ++i) {
    auto n = r().handle_events(milliseconds(5));
    ASSERT_TRUE(n) << n.error().message();
    dispatched += *n;
  }
  // select and poll notice the closed descriptor and end the registration with handle_close;
  // epoll silently forgets it. Either way no hook ran on the dead descriptor.
  EXPECT_EQ(dispatched, 0U);
  EXPECT_EQ(h.inputs, 0);
  if (r().backend() == Backend::select || r().backend() == Backend::poll) {
    EXPECT_EQ(h.closes, 1);
    EXPECT_EQ(r().handler_count(), 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, IoConformance, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

// Leaf futures over the reactor, on every backend: one-shot readiness, streams, accept and
// connect, timeouts, signals; cancellation leaves no registration or timer behind; and the
// steady state of a stream makes no kernel interest changes.
#include <signal.h>

#include <string>
#include <vector>

#include "futures_support.hpp"
#include "loopback_client.hpp"
#include "sigpipe_support.hpp"

namespace reactor::test {
namespace {

using IoFuturesTest = FuturesTest;

using loopback::random_bytes;

TEST_P(IoFuturesTest, ReadableFdIsOneShotAndLeavesNoRegistration) {
  Pipe p;
  auto reader = ex().spawn(readable(r(), p.r.get()));
  (void)ex().block_on(yield_now());
  EXPECT_EQ(r().handler_count(), 1U);
  EXPECT_FALSE(reader.done());
  ASSERT_TRUE(put(p.w.get(), "x"));
  run(std::move(reader));
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(take(p.r.get()), "x");  // readiness only: the data is still there
  run(writable(r(), p.w.get()));
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(IoFuturesTest, CancellingPendingLeavesRemovesRegistrationAndTimerAtOnce) {
  Pipe p;
  auto a = ex().spawn(readable(r(), p.r.get()));
  auto b = ex().spawn(sleep_for(r(), 1h));
  SocketPair s;
  Stream stream(r(), std::move(s.a));
  std::array<char, 16> buf{};
  auto c = ex().spawn(stream.read_some(buf));
  (void)ex().block_on(yield_now());
  EXPECT_EQ(r().handler_count(), 2U);
  EXPECT_EQ(r().timer_count(), 1U);
  EXPECT_TRUE(any(r().interest(stream.fd()) & EventMask::read));
  a.cancel();
  b.cancel();
  c.cancel();
  EXPECT_EQ(r().timer_count(), 0U);
  EXPECT_EQ(r().handler_count(), 1U);  // only the stream's own registration, now silent
  EXPECT_EQ(r().interest(stream.fd()), EventMask::none);
  // Nothing fires late: data arriving now wakes nobody and the loop stays quiet.
  ASSERT_TRUE(put(p.w.get(), "late"));
  ASSERT_TRUE(put(s.b.get(), "late"));
  const auto polls = ex().poll_count();
  ASSERT_TRUE(r().handle_events(10ms));
  EXPECT_EQ(ex().poll_count(), polls);
  stream.close();
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(IoFuturesTest, StreamTransfersMegabytesIntact) {
  SocketPair s;
  Stream a(r(), std::move(s.a));
  Stream b(r(), std::move(s.b));
  const std::string out = random_bytes(4 << 20, 7);
  std::string in(out.size(), '\0');
  auto [written, read] = run(when_all(a.write_all(out), b.read_exact(in)));
  EXPECT_EQ(written, out.size());
  EXPECT_EQ(read, out.size());
  EXPECT_TRUE(in == out);
}

TEST_P(IoFuturesTest, SteadyStateEchoMakesNoInterestChanges) {
  SocketPair s;
  Stream server(r(), std::move(s.a));
  Stream client(r(), std::move(s.b));
  auto echo = [](Stream& st) -> Task<void> {
    std::array<char, 4096> buf;
    for (;;) {
      const std::size_t n = co_await st.read_some(buf);
      if (n == 0) co_return;
      co_await st.write_all({buf.data(), n});
    }
  };
  auto talk = [](Stream& st, int rounds) -> Task<void> {
    std::string msg = "ping-pong message";
    std::string back(msg.size(), '\0');
    for (int i = 0; i < rounds; ++i) {
      co_await st.write_all(msg);
      co_await st.read_exact(back);
      EXPECT_EQ(back, msg);
    }
  };
  auto server_task = ex().spawn(echo(server));
  run(talk(client, 10));  // warm-up: registrations made
  const std::size_t changes = demux().changes;
  run(talk(client, 500));
  EXPECT_EQ(demux().changes, changes);
  // readable() awaited again and again on one stream: no change either.
  auto readiness = [](Stream& st, int fd, int rounds) -> Task<int> {
    int got = 0;
    for (int i = 0; i < rounds; ++i) {
      EXPECT_TRUE(put(fd, "r"));
      co_await st.readable();
      got += static_cast<int>(take(st.fd()).size());
    }
    co_return got;
  };
  server_task.cancel();
  const std::size_t before = demux().changes;
  EXPECT_EQ(run(readiness(server, client.fd(), 300)), 300);
  EXPECT_LE(demux().changes, before + 1);  // at most the first re-arm of the read interest
}

TEST_P(IoFuturesTest, ReadExactFailsWithEndOfStreamWhenThePeerCloses) {
  SocketPair s;
  Stream a(r(), std::move(s.a));
  ASSERT_TRUE(put(s.b.get(), "abc"));
  s.b.reset();
  std::string buf(10, '\0');
  auto o = run(outcome_of(a.read_exact(buf)));
  EXPECT_EQ(o.error(), async_errc::end_of_stream);
  std::array<char, 4> rest{};
  EXPECT_EQ(run(a.read_some(rest)), 0U);  // end of stream is a value for read_some
}

TEST_P(IoFuturesTest, WriteToAResetPeerIsAnErrorNotASignal) {
  SocketPair s;
  Stream a(r(), std::move(s.a));
  s.b.reset();
  const std::string data(1 << 16, 'x');
  auto o = run(outcome_of(a.write_all(data)));
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error(), std::errc::broken_pipe);
}

// Stream::write_all to a descriptor whose reader is gone fails with EPIPE and raises no SIGPIPE,
// on every kind of descriptor, with SIGPIPE's default disposition left in place. Run in a child
// (see sigpipe_support.hpp): a SIGPIPE would kill it. `waiting`: write_all had filled the buffer
// and was waiting for room when the reader went, so the failing write follows a wake-up.
void write_all_after_reader_left(const BackendParam& param, EndKind kind, bool waiting) {
  const auto survived = survives_default_sigpipe([&](ChildChecks& c) {
    Reactor reactor(param.make());
    Executor ex(reactor);
    WritableEnd end(kind);
    c.check(end.ours.valid(), "no descriptor");
    Stream a(reactor, std::move(end.ours));
    const std::string data(waiting ? (1 << 20) : 100, 'w');
    auto writer = ex.spawn(outcome_of(timeout(reactor, a.write_all(data), 10s)));
    if (waiting) {
      (void)ex.block_on(yield_now());
      c.check(!writer.done(), "write_all did not wait for room");
    }
    end.cut();
    const Outcome<std::size_t> o = ex.block_on(std::move(writer));
    c.check(!o.has_value() && o.error() == std::errc::broken_pipe,
            "write_all did not fail with EPIPE: " +
                (o.has_value() ? std::string("it succeeded") : o.error().message()));
  });
  EXPECT_TRUE(survived) << end_name(kind) << (waiting ? ", waiting" : ", immediate");
}

TEST_P(IoFuturesTest, WriteAllToAPipeWhoseReaderLeftIsEpipeNotSigpipe) {
  write_all_after_reader_left(GetParam(), EndKind::pipe, false);
  write_all_after_reader_left(GetParam(), EndKind::pipe, true);
}

TEST_P(IoFuturesTest, WriteAllToASocketPairWhosePeerLeftIsEpipeNotSigpipe) {
  write_all_after_reader_left(GetParam(), EndKind::socketpair, false);
  write_all_after_reader_left(GetParam(), EndKind::socketpair, true);
}

TEST_P(IoFuturesTest, WriteAllToATcpSocketShutDownForWritingIsEpipeNotSigpipe) {
  write_all_after_reader_left(GetParam(), EndKind::tcp, false);
}

TEST_P(IoFuturesTest, AcceptAndConnectOverLoopback) {
  auto listener = Listener::bind_loopback(r(), 0);
  ASSERT_TRUE(listener);
  Listener& l = listener.value();
  ASSERT_NE(l.port(), 0);
  for (int i = 0; i < 20; ++i) {
    auto [server, client] = run(when_all(l.accept(), connect(r(), loopback_address(l.port()), 5s)));
    const std::string msg = random_bytes(1000, static_cast<unsigned>(i));
    std::string got(msg.size(), '\0');
    run(when_all(client.write_all(msg), server.read_exact(got)));
    EXPECT_EQ(got, msg);
  }
  EXPECT_EQ(r().timer_count(), 0U);
  EXPECT_EQ(r().handler_count(), 1U);  // the listener's
}

TEST_P(IoFuturesTest, ConnectRefusedPropagatesTheError) {
  std::uint16_t port = 0;
  {
    auto l = Listener::bind_loopback(r(), 0);
    ASSERT_TRUE(l);
    port = l.value().port();
  }
  auto o = run(outcome_of(connect(r(), loopback_address(port), 5s)));
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error(), std::errc::connection_refused);
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(IoFuturesTest, ConnectTimesOutAndLeavesNothingBehind) {
  // A listener that never accepts, with its queue filled: further handshakes get no answer.
  auto l = Listener::bind_loopback(r(), 0, 0);
  ASSERT_TRUE(l);
  std::vector<UniqueFd> fillers;
  const sockaddr_in addr = loopback_address(l.value().port());
  for (int i = 0; i < 8; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    (void)::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    fillers.push_back(std::move(fd));
  }
  auto o = run(outcome_of(connect(r(), addr, 50ms)));
  if (o.has_value()) GTEST_SKIP() << "the kernel completed the handshake despite a full queue";
  EXPECT_EQ(o.error(), std::errc::timed_out);
  EXPECT_EQ(r().handler_count(), 0U);  // the listener was never awaited, so never registered
  EXPECT_EQ(r().timer_count(), 0U);
}

TEST_P(IoFuturesTest, ManyStreamsEchoConcurrently) {
  constexpr int pairs = 200;
  std::vector<Stream> left, right;
  for (int i = 0; i < pairs; ++i) {
    SocketPair s;
    left.emplace_back(r(), std::move(s.a));
    right.emplace_back(r(), std::move(s.b));
  }
  auto echo_once = [](Stream& st, std::size_t n) -> Task<void> {
    std::string buf(n, '\0');
    co_await st.read_exact(buf);
    co_await st.write_all(buf);
  };
  auto ask = [](Stream& st, std::string msg) -> Task<bool> {
    std::string back(msg.size(), '\0');
    co_await st.write_all(msg);
    co_await st.read_exact(back);
    co_return back == msg;
  };
  std::vector<JoinHandle<void>> servers;
  std::vector<Task<bool>> clients;
  for (int i = 0; i < pairs; ++i) {
    const std::size_t n = 1 + static_cast<std::size_t>(i) * 97 % 5000;
    servers.push_back(ex().spawn(echo_once(left[i], n)));
    clients.push_back(ask(right[i], random_bytes(n, static_cast<unsigned>(i))));
  }
  auto results = run(when_all(std::move(clients)));
  for (bool ok : results) EXPECT_TRUE(ok);
  for (auto& h : servers) run(std::move(h));
}

TEST_P(IoFuturesTest, WaitSignalCompletesWithTheSignal) {
  auto raiser = [](Reactor& r) -> Task<void> {
    co_await sleep_for(r, 1ms);
    ::raise(SIGUSR2);
  };
  auto w = ex().spawn(wait_signal(r(), {SIGUSR1, SIGUSR2}));
  ex().spawn(raiser(r())).detach();
  EXPECT_EQ(run(std::move(w)), SIGUSR2);
}

INSTANTIATE_TEST_SUITE_P(Backends, IoFuturesTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

// StreamHandler on every backend: echo, ownership (framework-owned handlers deleted after
// on_close, which is the last call), backpressure with watermarks, graceful close, half-close,
// idle timeout, peer resets without SIGPIPE (also on pipes), closing from outside a handler's own
// hooks.
#include <signal.h>

#include <chrono>

#include "handler_test_support.hpp"
#include "sigpipe_support.hpp"

namespace reactor::test {
namespace {

using StreamHandlerTest = HandlerTest;

TEST_P(StreamHandlerTest, CallerOwnedHandlerEchoesOverASocketPair) {
  SocketPair sp;
  ServiceLog& log = new_log();
  {
    TestService s(r(), std::move(sp.a), log);
    ASSERT_FALSE(s.open());
    EXPECT_EQ(log.opened, 1);
    ASSERT_TRUE(put(sp.b.get(), "ping"));
    std::string got;
    ASSERT_TRUE(run_until(r(), [&] {
      got += take(sp.b.get());
      return got == "ping";
    }));
    EXPECT_TRUE(s.is_open());
    EXPECT_EQ(s.open(), errc::already_registered);
  }  // destroyed while registered: leaves quietly
  EXPECT_EQ(log.live, 0);
  EXPECT_EQ(log.closed, 0);
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(StreamHandlerTest, FrameworkOwnedHandlerIsDeletedAfterOnCloseWhenPeerCloses) {
  SocketPair sp;
  ServiceLog& log = new_log();
  ASSERT_FALSE(StreamHandler::start(std::make_unique<TestService>(r(), std::move(sp.a), log)));
  ASSERT_TRUE(put(sp.b.get(), "abc"));
  std::string got;
  ASSERT_TRUE(run_until(r(), [&] {
    got += take(sp.b.get());
    return got == "abc";
  }));
  sp.b.reset();  // EOF: the default on_peer_closed closes gracefully
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
  EXPECT_EQ(log.closed, 1);
  EXPECT_FALSE(log.reasons.at(0));  // a clean close has no error
  EXPECT_EQ(log.after_close, 0);
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(StreamHandlerTest, StartFailureDeletesTheHandlerWithoutHooks) {
  ServiceLog& log = new_log();
  auto ec = StreamHandler::start(std::make_unique<TestService>(r(), UniqueFd(), log));
  EXPECT_EQ(ec, errc::invalid_handle);
  EXPECT_EQ(log.live, 0);
  EXPECT_EQ(log.opened + log.closed, 0);
  EXPECT_EQ(StreamHandler::start(nullptr), errc::invalid_argument);
}

TEST_P(StreamHandlerTest, GatherSendKeepsPiecesInOrder) {
  SocketPair sp;
  ServiceLog& log = new_log();
  TestService s(r(), std::move(sp.a), log);
  ASSERT_FALSE(s.open());
  EXPECT_TRUE(s.send({"HTTP/1.1 200 OK\r\n", "", "Content-Length: 2\r\n\r\n", "hi"}));
  EXPECT_TRUE(s.send(std::string("!")));
  EXPECT_EQ(take(sp.b.get()), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi!");
  EXPECT_EQ(s.queued(), 0U);
}

// A peer that writes but never reads: the server must stop reading once its queue passes the
// high watermark, so its memory stays bounded, and resume below the low one.
TEST_P(StreamHandlerTest, SlowReaderIsBackpressuredAndMemoryStaysBounded) {
  SocketPair sp;
  ServiceLog& log = new_log();
  StreamOptions o;
  o.high_watermark = 64 * 1024;
  o.low_watermark = 16 * 1024;
  o.read_size = 4096;
  TestService s(r(), std::move(sp.a), log, o);
  ASSERT_FALSE(s.open());
  const std::string payload = random_bytes(4 * 1024 * 1024, 7);
  std::size_t sent = 0;
  std::size_t max_queued = 0;
  // Write until the server stops taking more: its queue is full and it stopped reading.
  ASSERT_TRUE(run_until(r(), [&] {
    const std::size_t before = sent;
    pump_out(sp.b.get(), payload, sent);
    max_queued = std::max(max_queued, s.queued());
    return s.backpressured() && !s.reading() && sent == before;
  }));
  EXPECT_GT(s.queued(), o.high_watermark);
  EXPECT_LE(max_queued, o.high_watermark + o.read_size);  // bounded by the mark + one read
  EXPECT_LT(sent, payload.size());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r().handle_events(milliseconds(2)));
  EXPECT_LE(s.queued(), o.high_watermark + o.read_size);  // still bounded: nothing read
  // The reader wakes up: everything arrives, in order, and the server reads again.
  std::string echoed;
  ASSERT_TRUE(run_until(r(), [&] {
    pump_out(sp.b.get(), payload, sent);
    pump_in(sp.b.get(), echoed);
    max_queued = std::max(max_queued, s.queued());
    return echoed.size() >= payload.size();
  }));
  EXPECT_TRUE(echoed == payload);
  EXPECT_LE(max_queued, o.high_watermark + o.read_size);
  EXPECT_TRUE(s.reading());
  EXPECT_FALSE(s.backpressured());
}

TEST_P(StreamHandlerTest, SendBeyondHardCapAbortsWithNoBufferSpace) {
  SocketPair sp;
  ServiceLog& log = new_log();
  StreamOptions o;
  o.max_output = 256 * 1024;
  auto* s = new TestService(r(), std::move(sp.a), log, o);
  ASSERT_FALSE(StreamHandler::start(std::unique_ptr<StreamHandler>(s)));
  const std::string big(64 * 1024, 'x');
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) refused = !s->send(big);  // peer never reads
  ASSERT_TRUE(refused);
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
  ASSERT_EQ(log.reasons.size(), 1U);
  EXPECT_EQ(log.reasons[0], std::errc::no_buffer_space);
}

TEST_P(StreamHandlerTest, GracefulCloseFlushesQueuedOutputThenCloses) {
  SocketPair sp;
  ServiceLog& log = new_log();
  const std::string payload = random_bytes(2 * 1024 * 1024, 3);
  auto s = std::make_unique<TestService>(r(), std::move(sp.a), log);
  s->open_hook = [&](TestService& self) {
    EXPECT_TRUE(self.send(std::string_view(payload)));
    EXPECT_GT(self.queued(), 0U);  // more than a socket buffer: some is queued
    self.close();
    EXPECT_FALSE(self.send("late"));  // closing: no more output accepted
  };
  ASSERT_FALSE(StreamHandler::start(std::move(s)));
  std::string got;
  bool eof = false;
  ASSERT_TRUE(run_until(r(), [&] {
    eof = !pump_in(sp.b.get(), got);
    return eof;
  }));
  EXPECT_TRUE(got == payload);
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
  EXPECT_FALSE(log.reasons.at(0));
}

TEST_P(StreamHandlerTest, HalfCloseByPeerStillGetsAllReplies) {
  SocketPair sp;
  ServiceLog& log = new_log();
  ASSERT_FALSE(StreamHandler::start(std::make_unique<TestService>(r(), std::move(sp.a), log)));
  const std::string payload = random_bytes(300 * 1024, 5);
  std::size_t sent = 0;
  std::string got;
  bool eof = false;
  ASSERT_TRUE(run_until(r(), [&] {
    if (sent < payload.size()) {
      pump_out(sp.b.get(), payload, sent);
      if (sent == payload.size()) ::shutdown(sp.b.get(), SHUT_WR);
    }
    eof = !pump_in(sp.b.get(), got);
    return eof;
  }));
  EXPECT_TRUE(got == payload);
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
}

TEST_P(StreamHandlerTest, ShutdownWriteSendsEofButKeepsReading) {
  SocketPair sp;
  ServiceLog& log = new_log();
  auto s = std::make_unique<TestService>(r(), std::move(sp.a), log);
  s->open_hook = [](TestService& self) {
    self.send("bye");
    self.shutdown_write();
    EXPECT_FALSE(self.send("more"));
  };
  s->data_hook = [](TestService&, Buffer& in) { in.clear(); };  // just record
  ASSERT_FALSE(StreamHandler::start(std::move(s)));
  std::string got;
  ASSERT_TRUE(run_until(r(), [&] { return !pump_in(sp.b.get(), got); }));
  EXPECT_EQ(got, "bye");
  ASSERT_TRUE(put(sp.b.get(), "still listening?"));
  ASSERT_TRUE(run_until(r(), [&] { return log.received == "still listening?"; }));
  EXPECT_EQ(log.closed, 0);
  sp.b.reset();
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
}

TEST_P(StreamHandlerTest, IdleConnectionTimesOut) {
  SocketPair sp;
  ServiceLog& log = new_log();
  StreamOptions o;
  o.idle_timeout = milliseconds(120);
  ASSERT_FALSE(StreamHandler::start(std::make_unique<TestService>(r(), std::move(sp.a), log, o)));
  // Activity postpones the timeout: 6 bytes 30 ms apart span 150 ms, more than the 120 ms, while
  // each gap leaves 90 ms for scheduling delays on a loaded machine (with 40 ms and 15 ms gaps, a
  // preemption of over 25 ms inside run_until closed the connection early).
  TimePoint last_activity = Clock::now();
  for (int i = 0; i < 6; ++i) {
    const TimePoint now = Clock::now();
    const auto gap = std::chrono::duration_cast<milliseconds>(now - last_activity);
    last_activity = now;  // the server reads the byte after this
    // MSG_NOSIGNAL: an early close fails here, with the gap, instead of killing the test run.
    ASSERT_EQ(::send(sp.b.get(), "x", 1, MSG_NOSIGNAL), 1)
        << "closed before byte " << i << " (" << gap.count() << " ms after the previous one)";
    const auto until = Clock::now() + milliseconds(30);
    ASSERT_TRUE(run_until(r(), [&] { return Clock::now() >= until; }));
    take(sp.b.get());
  }
  EXPECT_EQ(log.closed, 0);
  ASSERT_TRUE(run_until(
      r(), [&] { return log.live == 0; }, std::chrono::seconds(5)));
  // Never before a full idle period after the last byte (which arrived 150 ms after the first).
  EXPECT_GE(Clock::now() - last_activity, milliseconds(120));
  EXPECT_EQ(log.reasons.at(0), std::errc::timed_out);
  std::string rest;
  EXPECT_FALSE(pump_in(sp.b.get(), rest));  // the server closed its end
}

// Writing to a peer that reset must not raise SIGPIPE (default disposition: kill the process).
TEST_P(StreamHandlerTest, PeerResetClosesOnlyThatConnectionWithoutSigpipe) {
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old), 0);
  ServiceLog& log = new_log();
  auto acceptor = listen(SocketAddress::loopback_v4(0), log);
  UniqueFd victim = connect_client(acceptor->local_address());
  UniqueFd bystander = connect_client(acceptor->local_address());
  ASSERT_TRUE(run_until(r(), [&] { return log.opened == 2; }));
  // Reset the victim's connection (linger 0 sends RST), then make the server write to it.
  linger lg{1, 0};
  ASSERT_EQ(::setsockopt(victim.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  ASSERT_TRUE(put(victim.get(), "boom"));
  victim.reset();
  ASSERT_TRUE(run_until(r(), [&] { return log.closed == 1; }));
  EXPECT_EQ(log.live, 1);
  // The other connection is unaffected.
  ASSERT_TRUE(put(bystander.get(), "fine"));
  std::string got;
  ASSERT_TRUE(run_until(r(), [&] {
    pump_in(bystander.get(), got);
    return got == "fine";
  }));
  ASSERT_EQ(::sigaction(SIGPIPE, &old, nullptr), 0);
}

// A write whose reader is gone ends the connection with EPIPE (on_close's reason) and raises no
// SIGPIPE, on every kind of descriptor, with SIGPIPE's default disposition left in place. Run in
// a child (see sigpipe_support.hpp): a SIGPIPE would kill it. `queued`: the bytes waited in the
// output queue when the reader went, so the failing write is the reactor-driven flush.
void write_after_reader_left(const BackendParam& param, EndKind kind, bool queued) {
  const auto survived = survives_default_sigpipe([&](ChildChecks& c) {
    Reactor reactor(param.make());
    ServiceLog log;
    WritableEnd end(kind);
    c.check(end.ours.valid(), "no descriptor");
    TestService s(reactor, std::move(end.ours), log);
    c.check(!s.open(), "open failed");
    if (queued) {
      c.check(s.send(std::string(1 << 20, 'q')), "the first send failed");
      c.check(s.queued() > 0, "nothing was left queued");
      end.cut();
    } else {
      end.cut();
      c.check(!s.send("x"), "a send to a widowed end succeeded");
    }
    c.check(run_until(reactor, [&] { return log.closed == 1; }), "on_close never came");
    c.check(log.reasons.size() == 1 && log.reasons[0] == std::errc::broken_pipe,
            "on_close's reason is not EPIPE: " +
                (log.reasons.empty() ? std::string("none") : log.reasons[0].message()));
  });
  EXPECT_TRUE(survived) << end_name(kind) << (queued ? ", queued" : ", immediate");
}

TEST_P(StreamHandlerTest, WriteToAPipeWhoseReaderLeftIsEpipeNotSigpipe) {
  write_after_reader_left(GetParam(), EndKind::pipe, false);
  write_after_reader_left(GetParam(), EndKind::pipe, true);
}

TEST_P(StreamHandlerTest, WriteToASocketPairWhosePeerLeftIsEpipeNotSigpipe) {
  write_after_reader_left(GetParam(), EndKind::socketpair, false);
  write_after_reader_left(GetParam(), EndKind::socketpair, true);
}

TEST_P(StreamHandlerTest, WriteToATcpSocketShutDownForWritingIsEpipeNotSigpipe) {
  write_after_reader_left(GetParam(), EndKind::tcp, false);
}

TEST_P(StreamHandlerTest, AbortFromOutsideItsHooksIsDeferredAndSafe) {
  SocketPair p1;
  SocketPair p2;
  ServiceLog& log = new_log();
  auto* victim = new TestService(r(), std::move(p1.a), log);
  ASSERT_FALSE(StreamHandler::start(std::unique_ptr<StreamHandler>(victim)));
  auto killer = std::make_unique<TestService>(r(), std::move(p2.a), log);
  killer->data_hook = [&](TestService&, Buffer& in) {
    victim->abort(std::make_error_code(std::errc::connection_aborted));
    EXPECT_FALSE(victim->is_open());  // still alive here: deletion is deferred to the loop
    EXPECT_FALSE(victim->send("x"));
    in.clear();
  };
  ASSERT_FALSE(StreamHandler::start(std::move(killer)));
  ASSERT_TRUE(put(p2.b.get(), "go"));
  ASSERT_TRUE(run_until(r(), [&] { return log.closed == 1; }));
  EXPECT_EQ(log.live, 1);
  EXPECT_EQ(log.reasons.at(0), std::errc::connection_aborted);
  EXPECT_EQ(log.after_close, 0);
}

TEST_P(StreamHandlerTest, AbortInsideOnDataDeletesAfterTheHookReturns) {
  SocketPair sp;
  ServiceLog& log = new_log();
  auto s = std::make_unique<TestService>(r(), std::move(sp.a), log);
  s->data_hook = [](TestService& self, Buffer& in) {
    self.abort();
    self.abort();  // twice is harmless
    self.close();
    in.clear();
  };
  ASSERT_FALSE(StreamHandler::start(std::move(s)));
  ASSERT_TRUE(put(sp.b.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return log.live == 0; }));
  EXPECT_EQ(log.closed, 1);
  EXPECT_EQ(r().handler_count(), 0U);
}

TEST_P(StreamHandlerTest, ReactorDestructionClosesAndDeletesOwnedHandlers) {
  ServiceLog& log = new_log();
  std::vector<SocketPair> pairs(5);
  for (auto& p : pairs) {
    ASSERT_FALSE(StreamHandler::start(std::make_unique<TestService>(r(), std::move(p.a), log)));
  }
  EXPECT_EQ(log.live, 5);
  reactor_.reset();
  EXPECT_EQ(log.live, 0);
  EXPECT_EQ(log.closed, 5);
  for (auto ec : log.reasons) EXPECT_EQ(ec, std::errc::operation_canceled);
}

TEST_P(StreamHandlerTest, UnconsumedInputBeyondTheCapAborts) {
  SocketPair sp;
  ServiceLog& log = new_log();
  StreamOptions o;
  o.max_input = 8 * 1024;
  auto s = std::make_unique<TestService>(r(), std::move(sp.a), log, o);
  s->data_hook = [](TestService&, Buffer&) {};  // waits for a "line" that never ends
  ASSERT_FALSE(StreamHandler::start(std::move(s)));
  const std::string junk(64 * 1024, 'j');
  std::size_t sent = 0;
  ASSERT_TRUE(run_until(r(), [&] {
    pump_out(sp.b.get(), junk, sent);
    return log.live == 0;
  }));
  EXPECT_EQ(log.reasons.at(0), std::errc::message_size);
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamHandlerTest, ::testing::ValuesIn(conformance_backends()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

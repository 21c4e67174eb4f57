// Reactor::stats(), dump() and the log sink.
#include <sstream>

#include "conformance.hpp"
#include "reactor/log.hpp"

namespace reactor::test {
namespace {

using IntrospectionConformance = Conformance;

TEST_P(IntrospectionConformance, CountersFollowWhatWasDispatched) {
  Pipe p;
  Probe h(p.r.get());
  h.on_input = drain;
  Probe t;
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(r().schedule_timer(&t, nullptr, milliseconds(1)));
  ASSERT_TRUE(r().schedule_timer(&t, nullptr, std::chrono::hours(1)));
  ASSERT_FALSE(r().post([] {}));
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return h.inputs == 1 && t.timeouts == 1; }));
  ASSERT_TRUE(run_until(r(), [&] { return r().stats().notifications_run == 1; }));
  const ReactorStats s = r().stats();
  EXPECT_EQ(s.backend, r().backend());
  EXPECT_EQ(s.input_events, 1U);
  EXPECT_EQ(s.output_events, 0U);
  EXPECT_EQ(s.timers_fired, 1U);
  EXPECT_EQ(s.notifications_run, 1U);
  EXPECT_EQ(s.hooks_called, 3U);
  EXPECT_GE(s.iterations, 1U);
  EXPECT_EQ(s.handles_registered, 1U);
  EXPECT_EQ(s.timers_pending, 1U);
  EXPECT_EQ(s.notifications_queued, 0U);
  EXPECT_GT(s.time_blocked + s.time_dispatching, Duration::zero());
  EXPECT_GE(s.busy_ratio(), 0.0);
  EXPECT_LE(s.busy_ratio(), 1.0);
}

TEST_P(IntrospectionConformance, QueuedNotificationsAreCounted) {
  Probe h;
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(r().notify(&h));
  EXPECT_EQ(r().stats().notifications_queued, 3U);
}

TEST_P(IntrospectionConformance, DumpWritesOneLinePerHandler) {
  Pipe p;
  SocketPair s;
  Probe a(p.r.get());
  Probe b(s.a.get());
  ASSERT_FALSE(r().register_handler(&a, EventMask::read));
  ASSERT_FALSE(r().register_handler(&b, EventMask::read | EventMask::write));
  ASSERT_FALSE(r().suspend_handler(&b));
  std::ostringstream out;
  r().dump(out);
  const std::string text = out.str();
  EXPECT_NE(text.find("reactor: backend=" + std::string(backend_name(r().backend()))),
            std::string::npos);
  EXPECT_NE(
      text.find("handle " + std::to_string(p.r.get()) + ": reactor::test::Probe interest=read "),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("interest=read|write suspended"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, IntrospectionConformance,
                         ::testing::ValuesIn(conformance_targets()), backend_param_name);

TEST(LogSink, ReplacedSinkReceivesMessagesAndDefaultIsRestorable) {
  struct Captured {
    std::vector<std::pair<LogLevel, std::string>> lines;
  } captured;
  set_log_sink(
      [](LogLevel level, std::string_view message, void* context) {
        static_cast<Captured*>(context)->lines.emplace_back(level, std::string(message));
      },
      &captured);
  log_message(LogLevel::error, "first");
  log_message(LogLevel::debug, "second");
  set_log_sink(nullptr);
  log_message(LogLevel::debug, "not captured");  // the default sink drops debug messages
  ASSERT_EQ(captured.lines.size(), 2U);
  EXPECT_EQ(captured.lines[0].first, LogLevel::error);
  EXPECT_EQ(captured.lines[0].second, "first");
  EXPECT_EQ(captured.lines[1].second, "second");
}

TEST(LogSink, AThrowingSinkDoesNotEscape) {
  set_log_sink([](LogLevel, std::string_view, void*) { throw std::runtime_error("sink failed"); });
  EXPECT_NO_THROW(log_message(LogLevel::error, "x"));
  set_log_sink(nullptr);
}

}  // namespace
}  // namespace reactor::test

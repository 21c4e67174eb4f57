// Handler lifetime on every backend: removal and deletion from inside callbacks, handlers
// removed in the middle of a ready batch, and descriptor numbers reused inside one batch.
// Run under ASan, a broken promise here shows up as a use-after-free.
#include "conformance.hpp"

namespace reactor::test {
namespace {

using LifetimeConformance = Conformance;

TEST_P(LifetimeConformance, SelfRemovalInCallbackClosesOnce) {
  Pipe p;
  Probe h(p.r.get());
  h.on_input = [&](Handle) {
    EXPECT_FALSE(r().remove_handler(&h));
    h.mark_final();
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return h.closes == 1; }));
  EXPECT_EQ(h.closed_mask, EventMask::read);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(5)));
  EXPECT_EQ(h.after_final, 0);  // promise 1
  EXPECT_EQ(h.closes, 1);       // promise 2
  EXPECT_EQ(r().remove_handler(&h), errc::not_registered);
}

TEST_P(LifetimeConformance, SelfRemovalWithDontCallSkipsHandleClose) {
  Pipe p;
  Probe h(p.r.get());
  h.on_input = [&](Handle) {
    EXPECT_FALSE(r().remove_handler(&h, EventMask::all_io, CloseHook::skip));
    return 0;
  };
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return r().handler_count() == 0; }));
  EXPECT_EQ(h.closes, 0);
}

TEST_P(LifetimeConformance, SelfDeletionInCallbackIsSafe) {
  Pipe p;
  auto* h = new Probe(p.r.get());
  bool deleted = false;
  h->on_input = [&](Handle) {
    bool* flag = &deleted;  // this closure dies with the handler: keep what we need on the stack
    delete h;               // still registered: the destructor withdraws the registration
    *flag = true;
    return -1;  // must not be acted upon: the handler is gone
  };
  ASSERT_FALSE(r().register_handler(h, EventMask::read));
  ASSERT_FALSE(r().schedule_timer(h, nullptr, milliseconds(1), milliseconds(1)).error());
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return deleted; }));
  EXPECT_EQ(r().handler_count(), 0U);
  EXPECT_EQ(r().timer_count(), 0U);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(5)));
}

TEST_P(LifetimeConformance, DeleteInHandleCloseIsSafe) {
  Pipe p;
  auto* h = new Probe(p.r.get());
  int closes = 0;
  h->on_input = [](Handle) { return -1; };
  h->on_close = [&](Handle, EventMask) {
    ++closes;
    delete h;
  };
  ASSERT_FALSE(r().register_handler(h, EventMask::read));
  ASSERT_TRUE(put(p.w.get(), "x"));
  ASSERT_TRUE(run_until(r(), [&] { return closes == 1; }));
  EXPECT_EQ(r().handler_count(), 0U);
}

// Two handles ready in the same batch. Whichever runs first removes (or destroys) the other,
// which then must get no event from that batch (promise 3).
class PairFixture {
 public:
  explicit PairFixture(Dispatcher& r) : reactor_(r) {
    for (int i = 0; i < 2; ++i) {
      probes_[i] = std::make_unique<Probe>(pipes_[i].r.get());
      EXPECT_FALSE(reactor_.register_handler(probes_[i].get(), EventMask::read));
      EXPECT_TRUE(put(pipes_[i].w.get(), "x"));
    }
  }
  Dispatcher& reactor_;
  Pipe pipes_[2];
  std::unique_ptr<Probe> probes_[2];
};

TEST_P(LifetimeConformance, RemovingAnotherHandlerInTheSameBatch) {
  PairFixture f(r());
  int first = -1;
  for (int i = 0; i < 2; ++i) {
    f.probes_[i]->on_input = [&, i](Handle) {
      if (first < 0) {
        first = i;
        EXPECT_FALSE(r().remove_handler(f.probes_[1 - i].get()));
        f.probes_[1 - i]->mark_final();
      }
      return 0;
    };
  }
  ASSERT_TRUE(run_until(r(), [&] { return first >= 0; }));
  const int other = 1 - first;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(5)));
  EXPECT_EQ(f.probes_[other]->inputs, 0);
  EXPECT_EQ(f.probes_[other]->closes, 1);
  EXPECT_EQ(f.probes_[other]->after_final, 0);
  EXPECT_EQ(r().handler_count(), 1U);
}

TEST_P(LifetimeConformance, DeletingAnotherHandlerInTheSameBatch) {
  PairFixture f(r());
  int first = -1;
  for (int i = 0; i < 2; ++i) {
    f.probes_[i]->on_input = [&, i](Handle fd) {
      if (first < 0) {
        first = i;
        f.probes_[1 - i].reset();  // destroyed while its event waits in this batch
      }
      take(fd);
      return 0;
    };
  }
  ASSERT_TRUE(run_until(r(), [&] { return first >= 0; }));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(5)));
  EXPECT_EQ(f.probes_[first]->inputs, 1);
  EXPECT_EQ(r().handler_count(), 1U);
}

TEST_P(LifetimeConformance, ReusedDescriptorNumberGetsNoStaleEvent) {
  PairFixture f(r());
  int first = -1;
  Pipe fresh;
  std::unique_ptr<Probe> newcomer;
  for (int i = 0; i < 2; ++i) {
    f.probes_[i]->on_input = [&, i](Handle fd) {
      if (first < 0) {
        first = i;
        // Close the other's descriptor and put a new, idle pipe on the very same number,
        // registered to a new handler, while the old descriptor's event is still in the batch.
        const int number = f.pipes_[1 - i].r.get();
        EXPECT_FALSE(r().remove_handler(f.probes_[1 - i].get()));
        EXPECT_EQ(::dup2(fresh.r.get(), number), number);
        newcomer = std::make_unique<Probe>(number);
        EXPECT_FALSE(r().register_handler(newcomer.get(), EventMask::read));
      }
      take(fd);
      return 0;
    };
  }
  ASSERT_TRUE(run_until(r(), [&] { return first >= 0; }));
  ASSERT_TRUE(newcomer);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(5)));
  EXPECT_EQ(newcomer->inputs, 0);  // promise 4: the old descriptor's event never reaches it
  // And the new registration works once its own descriptor is readable.
  newcomer->on_input = [](Handle fd) {
    take(fd);
    return 0;
  };
  ASSERT_TRUE(put(fresh.w.get(), "new"));
  ASSERT_TRUE(run_until(r(), [&] { return newcomer->inputs == 1; }));
  EXPECT_FALSE(r().remove_handler(newcomer.get()));
}

TEST_P(LifetimeConformance, DestroyedHandlerTimersNeverFire) {
  Pipe p;
  Probe keeper(p.r.get());
  auto* doomed = new Probe();
  ASSERT_TRUE(r().schedule_timer(doomed, nullptr, milliseconds(1)));
  ASSERT_TRUE(r().schedule_timer(doomed, nullptr, milliseconds(1), milliseconds(1)));
  EXPECT_EQ(r().timer_count(), 2U);
  delete doomed;
  EXPECT_EQ(r().timer_count(), 0U);
  int fired = 0;
  keeper.on_timeout = [&](TimePoint, const void*) { return ++fired; };
  ASSERT_TRUE(r().schedule_timer(&keeper, nullptr, milliseconds(5)));
  ASSERT_TRUE(run_until(r(), [&] { return fired == 1; }));
}

TEST_P(LifetimeConformance, TimerCallbackDeletingAnotherHandlerDueInTheSameTick) {
  auto* a = new Probe();
  auto* b = new Probe();
  int fired = 0;
  a->on_timeout = [&](TimePoint, const void*) {
    ++fired;
    delete b;  // b's timer is due in this very pass
    b = nullptr;
    return 0;
  };
  b->on_timeout = [&](TimePoint, const void*) {
    ++fired;
    delete a;
    a = nullptr;
    return 0;
  };
  ASSERT_TRUE(r().schedule_timer(a, nullptr, Duration::zero()));
  ASSERT_TRUE(r().schedule_timer(b, nullptr, Duration::zero()));
  ASSERT_TRUE(run_until(r(), [&] { return fired >= 1; }));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r().handle_events(milliseconds(2)));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(r().timer_count(), 0U);
  delete a;
  delete b;
}

TEST_P(LifetimeConformance, ReactorDestructionClosesRemainingRegistrations) {
  Pipe p;
  SocketPair s;
  Probe a(p.r.get());
  auto* owned = new Probe(s.a.get());
  bool owned_closed = false;
  owned->on_close = [&](Handle, EventMask) {
    owned_closed = true;
    delete owned;  // framework-owned handlers are released in handle_close
  };
  Probe timer_only;
  ASSERT_FALSE(r().register_handler(&a, EventMask::read));
  ASSERT_FALSE(r().register_handler(owned, EventMask::read | EventMask::write));
  ASSERT_TRUE(r().schedule_timer(&timer_only, nullptr, std::chrono::hours(1)));
  reactor_.reset();
  EXPECT_EQ(a.closes, 1);
  EXPECT_EQ(a.closed_mask, EventMask::read);
  EXPECT_TRUE(owned_closed);
  EXPECT_EQ(timer_only.closes, 0);
  // timer_only and a are destroyed after the reactor: their destructors must not touch it.
}

TEST_P(LifetimeConformance, HandlerRegisteredWithTwoReactorsIsRefused) {
  Pipe p;
  Pipe q;
  Probe h(p.r.get());
  Reactor other(GetParam().make());
  ASSERT_FALSE(r().register_handler(&h, EventMask::read));
  EXPECT_EQ(other.register_handler(q.r.get(), &h, EventMask::read), errc::registered_elsewhere);
  EXPECT_FALSE(r().remove_handler(&h));
  EXPECT_FALSE(other.register_handler(q.r.get(), &h, EventMask::read));
  EXPECT_FALSE(other.remove_handler(q.r.get()));
}

INSTANTIATE_TEST_SUITE_P(Backends, LifetimeConformance, ::testing::ValuesIn(conformance_targets()),
                         backend_param_name);

}  // namespace
}  // namespace reactor::test

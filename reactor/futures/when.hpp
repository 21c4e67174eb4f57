// Combinators over futures: when_all (every child, or the first error), when_any (the first
// child to finish), timeout (a child or std::errc::timed_out) and outcome_of (a child's Outcome
// as a value, so awaiting it never throws). A child is dropped, and so cancelled, as soon as its
// result is known or no longer needed: the losers of when_any, the rest of when_all after an
// error, the child of a timeout that expired.
//
// Children are polled in order with the parent's waker; each poll of the parent polls the
// children still pending (fine for the handful of children these are meant for; spawn tasks and
// await their JoinHandles for thousands).
#pragma once

#include <cstddef>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "reactor/futures/io_futures.hpp"
#include "reactor/futures/outcome.hpp"

namespace reactor {

/// A future of the child's Outcome: never fails itself.
template <Pollable F>
class [[nodiscard]] OutcomeOf {
 public:
  /// What the future completes with.
  using value_type = Outcome<future_value_t<F>>;
  /// Takes ownership of `child`.
  explicit OutcomeOf(F&& child) : child_(std::move(child)) {}
  /// Polls the child; once it is done, ready with its outcome, success or failure.
  Poll<value_type> poll(const Waker& waker) {
    auto r = child_.poll(waker);
    if (!r) return std::nullopt;
    return Outcome<value_type>(std::move(*r));
  }

 private:
  F child_;
};

/// Wraps `child` so that awaiting it yields its Outcome instead of throwing.
template <Pollable F>
OutcomeOf<std::remove_cvref_t<F>> outcome_of(F&& child) {
  static_assert(!std::is_lvalue_reference_v<F>, "outcome_of takes ownership: pass an rvalue");
  return OutcomeOf<std::remove_cvref_t<F>>(std::move(child));
}

/// The child's value, or std::errc::timed_out when the deadline comes first (the child is then
/// dropped at once). A child that is ready in the same poll as the deadline wins.
template <Pollable F>
class [[nodiscard]] Timeout {
 public:
  /// What the future completes with.
  using value_type = future_value_t<F>;
  /// Takes ownership of `child`; the deadline's timer is armed by the first poll.
  Timeout(Reactor& reactor, F&& child, TimePoint deadline)
      : reactor_(&reactor), child_(std::move(child)), deadline_(deadline) {}
  /// Polls the child, then checks the deadline.
  Poll<value_type> poll(const Waker& waker) {
    if (!child_) return Outcome<value_type>::failure(std::make_error_code(std::errc::timed_out));
    if (auto r = child_->poll(waker)) {
      child_.reset();
      timer_.disarm();
      return r;
    }
    if (!timer_.armed() && !timer_.fired()) {
      if (auto ec = timer_.arm(*reactor_, deadline_)) {
        child_.reset();
        return Outcome<value_type>::failure(ec);
      }
    }
    if (timer_.fired()) {
      child_.reset();  // cancel now: no registration of the child outlives the deadline
      return Outcome<value_type>::failure(std::make_error_code(std::errc::timed_out));
    }
    timer_.set_waker(waker);
    return std::nullopt;
  }

 private:
  Reactor* reactor_;
  std::optional<F> child_;
  TimePoint deadline_;
  detail::TimerSlot timer_;
};

/// `child` limited to `limit` from now. A limit of zero or less has passed already: the child
/// gets its first poll, then the timeout expires at the next turn of the loop. A limit past the
/// end of the clock's range never expires (deadline_after).
template <Pollable F>
Timeout<std::remove_cvref_t<F>> timeout(Reactor& reactor, F&& child, Duration limit) {
  static_assert(!std::is_lvalue_reference_v<F>, "timeout takes ownership: pass an rvalue");
  return Timeout<std::remove_cvref_t<F>>(reactor, std::move(child),
                                         deadline_after(Clock::now(), limit));
}

/// Every child's value, in order (void children give Unit); fails with the first failure.
template <Pollable... Fs>
class [[nodiscard]] WhenAll {
 public:
  /// What the future completes with.
  using value_type = std::tuple<value_or_unit<future_value_t<Fs>>...>;
  /// Takes ownership of `children`.
  explicit WhenAll(Fs&&... children) : children_(std::move(children)...) {}
  /// Polls the children still pending; ready when all are done or one has failed.
  Poll<value_type> poll(const Waker& waker) {
    std::optional<Outcome<value_type>> failure;
    poll_each(waker, failure, std::index_sequence_for<Fs...>{});
    if (failure) {
      std::apply([](auto&... c) { (c.reset(), ...); }, children_);
      return std::move(*failure);
    }
    if (!all_done(std::index_sequence_for<Fs...>{})) return std::nullopt;
    return Outcome<value_type>(take(std::index_sequence_for<Fs...>{}));
  }

 private:
  template <std::size_t... I>
  void poll_each(const Waker& waker, std::optional<Outcome<value_type>>& failure,
                 std::index_sequence<I...>) {
    (poll_one<I>(waker, failure), ...);
  }
  template <std::size_t I>
  void poll_one(const Waker& waker, std::optional<Outcome<value_type>>& failure) {
    auto& child = std::get<I>(children_);
    if (failure || !child) return;
    auto r = child->poll(waker);
    if (!r) return;
    child.reset();
    if (!*r) {
      failure = Outcome<value_type>::failure_of(*r);
      return;
    }
    std::get<I>(values_).emplace(std::move(**r));
  }
  template <std::size_t... I>
  bool all_done(std::index_sequence<I...>) const {
    return (std::get<I>(values_).has_value() && ...);
  }
  template <std::size_t... I>
  value_type take(std::index_sequence<I...>) {
    return value_type(std::move(*std::get<I>(values_))...);
  }

  std::tuple<std::optional<Fs>...> children_;
  std::tuple<std::optional<value_or_unit<future_value_t<Fs>>>...> values_;
};

/// Waits for every future; see WhenAll.
template <Pollable... Fs>
WhenAll<std::remove_cvref_t<Fs>...> when_all(Fs&&... children) {
  static_assert((!std::is_lvalue_reference_v<Fs> && ...), "when_all takes ownership: rvalues");
  return WhenAll<std::remove_cvref_t<Fs>...>(std::move(children)...);
}

/// Every child's value, in order; fails with the first failure. For a run-time number.
template <Pollable F>
class [[nodiscard]] WhenAllVector {
 public:
  /// What the future completes with.
  using value_type = std::vector<value_or_unit<future_value_t<F>>>;
  /// Takes ownership of `children`.
  explicit WhenAllVector(std::vector<F> children) : values_(children.size()) {
    children_.reserve(children.size());
    for (F& c : children) children_.emplace_back(std::move(c));
  }
  /// Polls the children still pending; ready when all are done or one has failed.
  Poll<value_type> poll(const Waker& waker) {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      if (!children_[i]) continue;
      auto r = children_[i]->poll(waker);
      if (!r) continue;
      children_[i].reset();
      if (!*r) {
        children_.clear();
        return Outcome<value_type>::failure_of(*r);
      }
      values_[i].emplace(std::move(**r));
      ++done_;
    }
    if (done_ < values_.size()) return std::nullopt;
    value_type out;
    out.reserve(values_.size());
    for (auto& v : values_) out.push_back(std::move(*v));
    return Outcome<value_type>(std::move(out));
  }

 private:
  std::vector<std::optional<F>> children_;
  std::vector<std::optional<value_or_unit<future_value_t<F>>>> values_;
  std::size_t done_ = 0;
};

/// Waits for every future of a vector.
template <Pollable F>
WhenAllVector<F> when_all(std::vector<F> children) {
  return WhenAllVector<F>(std::move(children));
}

/// The first child to finish: its index (variant::index()) and value, or its failure. The
/// others are dropped at once.
template <Pollable... Fs>
class [[nodiscard]] WhenAny {
 public:
  /// What the future completes with.
  using value_type = std::variant<value_or_unit<future_value_t<Fs>>...>;
  /// Takes ownership of `children`.
  explicit WhenAny(Fs&&... children) : children_(std::move(children)...) {}
  /// Polls the children in order; ready with the first one that is done.
  Poll<value_type> poll(const Waker& waker) {
    if (finished_) return Outcome<value_type>::failure(async_errc::no_state);
    std::optional<Outcome<value_type>> out;
    poll_each(waker, out, std::index_sequence_for<Fs...>{});
    if (!out) return std::nullopt;
    finished_ = true;
    std::apply([](auto&... c) { (c.reset(), ...); }, children_);
    return std::move(*out);
  }

 private:
  template <std::size_t... I>
  void poll_each(const Waker& waker, std::optional<Outcome<value_type>>& out,
                 std::index_sequence<I...>) {
    (poll_one<I>(waker, out), ...);
  }
  template <std::size_t I>
  void poll_one(const Waker& waker, std::optional<Outcome<value_type>>& out) {
    auto& child = std::get<I>(children_);
    if (out || !child) return;
    auto r = child->poll(waker);
    if (!r) return;
    if (!*r) {
      out = Outcome<value_type>::failure_of(*r);
    } else {
      out.emplace(value_type(std::in_place_index<I>, std::move(**r)));
    }
  }

  std::tuple<std::optional<Fs>...> children_;
  bool finished_ = false;
};

/// Waits for the first of several futures; see WhenAny.
template <Pollable... Fs>
WhenAny<std::remove_cvref_t<Fs>...> when_any(Fs&&... children) {
  static_assert((!std::is_lvalue_reference_v<Fs> && ...), "when_any takes ownership: rvalues");
  return WhenAny<std::remove_cvref_t<Fs>...>(std::move(children)...);
}

/// The first child of a vector to finish: (index, value), or its failure.
template <Pollable F>
class [[nodiscard]] WhenAnyVector {
 public:
  /// What the future completes with.
  using value_type = std::pair<std::size_t, value_or_unit<future_value_t<F>>>;
  /// Takes ownership of `children`.
  explicit WhenAnyVector(std::vector<F> children) : children_(std::move(children)) {}
  /// Polls the children in order; ready with the first one that is done.
  Poll<value_type> poll(const Waker& waker) {
    if (children_.empty()) return Outcome<value_type>::failure(async_errc::no_state);
    for (std::size_t i = 0; i < children_.size(); ++i) {
      auto r = children_[i].poll(waker);
      if (!r) continue;
      children_.clear();
      if (!*r) return Outcome<value_type>::failure_of(*r);
      return Outcome<value_type>(value_type(i, std::move(**r)));
    }
    return std::nullopt;
  }

 private:
  std::vector<F> children_;
};

/// Waits for the first future of a vector to finish.
template <Pollable F>
WhenAnyVector<F> when_any(std::vector<F> children) {
  return WhenAnyVector<F>(std::move(children));
}

}  // namespace reactor

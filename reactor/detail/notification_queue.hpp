// NotificationQueue: work handed to the reactor's thread by any thread (notify and post).
// Senders append under a short lock and wake the loop only when the queue turns non-empty, so a
// flood costs one wake-up, never blocks the sender, and loses nothing. The loop takes the whole
// queue at once into a private batch and runs a bounded number per iteration.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "base/event_handler.hpp"
#include "reactor/detail/wakeup.hpp"

namespace reactor {

/// One unit of cross-thread work: a hook call (handler + mask) or a callable.
struct Notification {
  /// The handler whose hooks to call; null for post(), or once purged.
  EventHandler* handler = nullptr;
  /// Which hooks to call on `handler`.
  EventMask mask = EventMask::none;
  /// The callable post() queued (empty for notify()).
  std::function<void()> work;
};

/// Multi-producer, single-consumer queue with a wake-up descriptor.
class NotificationQueue {
 public:
  /// Throws std::system_error when the wake-up descriptor cannot be created.
  NotificationQueue() = default;

  /// The descriptor that becomes readable when items arrive (or wake() is called).
  [[nodiscard]] int handle() const noexcept { return wakeup_.handle(); }
  /// Any thread: appends and wakes the consumer if it may be asleep. Strong FIFO order.
  void push(Notification&& item);
  /// Any thread: wakes the consumer without an item.
  void wake() const noexcept { wakeup_.signal(); }

  /// Consumer: clears the wake-up and moves what has arrived behind the private batch.
  void collect();
  /// Consumer: true while items wait in the private batch.
  [[nodiscard]] bool has_batch() const noexcept { return head_ < batch_.size(); }
  /// Consumer: takes the next batch item; false when the batch is empty.
  bool pop(Notification& out);
  /// Consumer: items waiting, in the batch and not yet collected.
  [[nodiscard]] std::size_t size() const;
  /// Consumer: disarms every pending item aimed at `handler`; returns how many.
  std::size_t purge(const EventHandler* handler);

 private:
  Wakeup wakeup_;
  mutable std::mutex mutex_;
  std::vector<Notification> incoming_;  // guarded by mutex_
  bool wake_pending_ = false;           // guarded by mutex_: a wake-up is in flight
  std::vector<Notification> batch_;     // consumer only
  std::size_t head_ = 0;                // consumer only: next item of batch_
};

}  // namespace reactor

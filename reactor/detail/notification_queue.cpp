// Multi-producer notification queue.
#include "reactor/detail/notification_queue.hpp"

#include <utility>

namespace reactor {

void NotificationQueue::push(Notification&& item) {
  bool must_wake = false;
  {
    std::lock_guard lock(mutex_);
    incoming_.push_back(std::move(item));
    must_wake = !std::exchange(wake_pending_, true);
  }
  // Outside the lock: the write is a system call and other senders need not wait for it.
  if (must_wake) wakeup_.signal();
}

void NotificationQueue::collect() {
  // Drain first: a push after the drain either lands in this swap or signals again.
  wakeup_.drain();
  if (head_ == batch_.size()) {
    batch_.clear();
    head_ = 0;
  }
  std::lock_guard lock(mutex_);
  wake_pending_ = false;
  if (incoming_.empty()) return;
  if (batch_.empty()) {
    batch_.swap(incoming_);  // both keep their capacity: no allocation in steady state
  } else {
    for (auto& n : incoming_) batch_.push_back(std::move(n));
    incoming_.clear();
  }
}

bool NotificationQueue::pop(Notification& out) {
  while (head_ < batch_.size()) {
    Notification& n = batch_[head_++];
    if (n.handler == nullptr && !n.work) continue;  // purged
    out = std::move(n);
    n = Notification{};
    return true;
  }
  return false;
}

std::size_t NotificationQueue::size() const {
  std::lock_guard lock(mutex_);
  return incoming_.size() + (batch_.size() - head_);
}

std::size_t NotificationQueue::purge(const EventHandler* handler) {
  std::size_t n = 0;
  auto disarm = [&](Notification& item) {
    if (item.handler == handler) {
      item = Notification{};
      ++n;
    }
  };
  for (std::size_t i = head_; i < batch_.size(); ++i) disarm(batch_[i]);
  std::lock_guard lock(mutex_);
  for (auto& item : incoming_) disarm(item);
  return n;
}

}  // namespace reactor

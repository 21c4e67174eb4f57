// io_uring(7) backend: one-shot poll requests, re-armed once per wait.
//
// Why one-shot and not IORING_POLL_ADD_MULTI: a multishot poll posts a completion when the file
// signals a wake-up, not while it stays ready, so a handler that reads one byte of ten would
// never hear of the other nine (edge-triggered in practice). A one-shot poll submitted while the
// descriptor is ready completes at once, which gives level-triggered behaviour for the price of
// one SQE per ready descriptor per wait; all of them go to the kernel in the wait's one syscall.
#include "demux/io_uring_demux.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "base/error.hpp"

namespace reactor {
namespace {

constexpr unsigned ring_entries = 256;
constexpr unsigned completion_entries = 4096;
// user_data of cancel requests: generation 0 is never given to a poll, so this matches nothing.
constexpr std::uint64_t cancel_tag = 0;

std::uint32_t to_poll(EventMask interest) noexcept {
  std::uint32_t events = 0;
  if (any(interest & read_side)) events |= POLLIN | POLLRDHUP;
  if (any(interest & write_side)) events |= POLLOUT;
  if (any(interest & EventMask::except)) events |= POLLPRI;
  return events;
}

EventMask from_poll(std::uint32_t got, std::uint32_t asked) noexcept {
  EventMask ev = EventMask::none;
  if ((got & (POLLIN | POLLRDHUP)) != 0) ev |= EventMask::read;
  if ((got & POLLOUT) != 0) ev |= EventMask::write;
  if ((got & POLLPRI) != 0) ev |= EventMask::except;
  // POLLERR and POLLHUP are reported whatever was asked: route them to what the handler asked
  // for, so its next read or write sees the condition.
  if ((got & (POLLERR | POLLHUP)) != 0) {
    if ((asked & POLLIN) != 0) ev |= EventMask::read;
    if ((asked & POLLOUT) != 0) ev |= EventMask::write;
    if ((asked & (POLLIN | POLLOUT)) == 0) ev |= EventMask::except;
  }
  return ev;
}

std::uint64_t pack(int fd, std::uint32_t generation) noexcept {
  return (static_cast<std::uint64_t>(generation) << 32) | static_cast<std::uint32_t>(fd);
}

// Sets up `ring` with the fastest flags this kernel accepts. SINGLE_ISSUER | DEFER_TASKRUN
// (6.1+) run completions only when the loop thread enters the kernel, which measured as fast as
// epoll here; the ring starts disabled so that the thread binding happens at the first submit.
// EINVAL means an older kernel: retry with plainer flags. Returns 0 or a negative errno.
int init_ring(io_uring& ring) noexcept {
  const unsigned preferred = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                             IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL;
  int rc = -EINVAL;
  for (unsigned extra : {preferred, 0U}) {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | extra;
    params.cq_entries = completion_entries;
    rc = io_uring_queue_init_params(ring_entries, &ring, &params);
    if (rc != -EINVAL) break;
  }
  return rc;
}

// liburing 2.3 (Debian 12) declares io_uring_enable_rings but its shared library does not export
// it, so make the one register call directly.
int enable_ring(const io_uring& ring) noexcept {
  const long rc =
      ::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  return rc < 0 ? -errno : 0;
}

// A number of the calling thread, never reused within the process: pthread_t and tid values
// come back once a thread has exited, but the kernel still refuses a new thread on a ring bound
// to the old one.
std::uint64_t this_thread_token() noexcept {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t token = next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

}  // namespace

bool io_uring_usable(std::error_code* why) noexcept {
  static std::once_flag once;
  static std::error_code verdict;
  std::call_once(once, [] {
    io_uring ring{};
    if (int rc = init_ring(ring); rc < 0) {
      verdict = {-rc, std::system_category()};  // ENOSYS: no io_uring; EPERM: seccomp, sysctl
      return;
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    if (probe == nullptr || !io_uring_opcode_supported(probe, IORING_OP_POLL_ADD) ||
        !io_uring_opcode_supported(probe, IORING_OP_POLL_REMOVE)) {
      verdict = errc::backend_unavailable;
    }
    if (probe != nullptr) io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
  });
  if (why != nullptr) *why = verdict;
  return !verdict;
}

IoUringDemux::IoUringDemux() {
  std::error_code why;
  if (!io_uring_usable(&why)) throw std::system_error(why, "io_uring unavailable");
  if (int rc = init_ring(ring_); rc < 0) {
    throw std::system_error({-rc, std::system_category()}, "io_uring_queue_init_params");
  }
}

// Tearing the ring down cancels every poll still in flight.
IoUringDemux::~IoUringDemux() { io_uring_queue_exit(&ring_); }

IoUringDemux::Slot* IoUringDemux::slot(int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return nullptr;
  Slot& s = slots_[fd];
  return s.events != 0 ? &s : nullptr;
}

std::error_code IoUringDemux::add(int fd, EventMask interest) {
  if (fd < 0) return errc::invalid_handle;
  // The poll would only fail at the next wait: refuse a closed descriptor now, as poll does.
  if (::fcntl(fd, F_GETFD) == -1) return errc::invalid_handle;
  if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(fd + 1);
  Slot& s = slots_[fd];
  if (s.events != 0) return errc::already_registered;
  s.events = to_poll(interest);
  queue_arm(fd);
  return {};
}

std::error_code IoUringDemux::modify(int fd, EventMask interest) {
  Slot* s = slot(fd);
  if (s == nullptr) return errc::not_registered;
  const std::uint32_t events = to_poll(interest);
  if (events == s->events) return {};
  // The poll in flight watches the old bits and might never complete: replace it.
  if (auto ec = cancel(fd, *s)) return ec;
  s->events = events;
  queue_arm(fd);
  return {};
}

std::error_code IoUringDemux::remove(int fd) {
  Slot* s = slot(fd);
  if (s == nullptr) return errc::not_registered;
  const bool was_armed = s->armed;
  if (auto ec = cancel(fd, *s)) return ec;
  s->events = 0;
  if (!was_armed) return {};
  // A poll request holds a reference to the file: submit the cancel now (and run the deferred
  // completion) so a descriptor closed after remove() is really released, e.g. the peer of a
  // socket sees end of file without waiting for this reactor's next wait.
  const int rc = io_uring_submit_and_get_events(&ring_);
  return rc < 0 ? enter_result(rc) : std::error_code{};
}

// Withdraws the poll in flight for `fd`, if any. Its completion, or one already posted, carries
// the old generation and is ignored by harvest(), also when the number names a new file.
std::error_code IoUringDemux::cancel(int fd, Slot& s) noexcept {
  // First, because taking the ring over from another thread withdraws every poll, this one too.
  if (s.armed) {
    if (auto ec = own()) return ec;
  }
  if (s.armed) {
    io_uring_sqe* sqe = nullptr;
    if (auto ec = next_sqe(sqe)) return ec;
    io_uring_prep_poll_remove(sqe, pack(fd, s.generation));
    io_uring_sqe_set_data64(sqe, cancel_tag);
    s.armed = false;
  }
  if (++s.generation == 0) s.generation = 1;
  return {};
}

void IoUringDemux::queue_arm(int fd) noexcept {
  Slot& s = slots_[fd];
  if (s.queued) return;
  s.queued = true;
  to_arm_.push_back(fd);
}

// Makes the calling thread the ring's issuer, before anything is submitted. A ring bound to
// another thread is replaced, not shared: the kernel would answer this thread with EEXIST.
std::error_code IoUringDemux::own() noexcept {
  if ((ring_.flags & IORING_SETUP_SINGLE_ISSUER) == 0) return {};  // a plain ring: any thread
  const std::uint64_t me = this_thread_token();
  if (issuer_ == me) return {};
  if (issuer_ != 0) {
    if (auto ec = replace_ring()) return ec;
  }
  if ((ring_.flags & IORING_SETUP_R_DISABLED) != 0) {
    if (int rc = enable_ring(ring_); rc < 0) return {-rc, std::system_category()};
  }
  issuer_ = me;
  return {};
}

// Swaps in a fresh, unbound ring and queues every watched descriptor to be armed on it. Closing
// the old ring withdraws its polls (releasing their files); the completions still in it go with
// it, which loses nothing: the new polls report whatever is still ready, and an old generation
// can never be harvested from the new ring.
std::error_code IoUringDemux::replace_ring() noexcept {
  io_uring fresh{};
  if (int rc = init_ring(fresh); rc < 0) return {-rc, std::system_category()};
  io_uring_queue_exit(&ring_);
  ring_ = fresh;
  issuer_ = 0;
  to_arm_.clear();
  for (std::size_t fd = 0; fd < slots_.size(); ++fd) {
    Slot& s = slots_[fd];
    s.armed = false;
    s.queued = false;
    if (s.events != 0) queue_arm(static_cast<int>(fd));
  }
  return {};
}

// A free SQE in `sqe`; when the queue is full, hands the batch to the kernel first.
std::error_code IoUringDemux::next_sqe(io_uring_sqe*& sqe) noexcept {
  if (auto ec = own()) return ec;
  sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return {};
  if (int rc = io_uring_submit(&ring_); rc < 0) return {-rc, std::system_category()};
  sqe = io_uring_get_sqe(&ring_);
  return sqe != nullptr ? std::error_code{} : std::error_code(EBUSY, std::system_category());
}

std::error_code IoUringDemux::arm_queued() noexcept {
  std::size_t done = 0;
  std::error_code ec;
  for (; done < to_arm_.size(); ++done) {
    const int fd = to_arm_[done];
    Slot& s = slots_[fd];
    if (s.events != 0 && !s.armed) {
      io_uring_sqe* sqe = nullptr;
      if ((ec = next_sqe(sqe))) break;
      io_uring_prep_poll_add(sqe, fd, s.events);
      io_uring_sqe_set_data64(sqe, pack(fd, s.generation));
      s.armed = true;
    }
    s.queued = false;
  }
  to_arm_.erase(to_arm_.begin(), to_arm_.begin() + static_cast<std::ptrdiff_t>(done));
  return ec;
}

// Interrupted or timed-out waits are not errors; the rest are (EEXIST: two threads used a
// single-issuer ring at the same time, which the Reactor's contract rules out).
std::error_code IoUringDemux::enter_result(int rc) noexcept {
  if (rc >= 0 || rc == -EINTR || rc == -ETIME || rc == -EAGAIN || rc == -EBUSY) return {};
  return {-rc, std::system_category()};
}

std::error_code IoUringDemux::submit_and_wait(std::chrono::nanoseconds timeout) noexcept {
  if (auto ec = own()) return ec;
  io_uring_cqe* cqe = nullptr;
  if (timeout < std::chrono::nanoseconds::zero()) {
    return enter_result(io_uring_submit_and_wait(&ring_, 1));
  }
  // With IORING_FEAT_EXT_ARG (5.11+) the timeout travels with the one io_uring_enter call and
  // no timeout SQE is needed; liburing falls back to one on older kernels.
  // At most max_wait: the kernel adds the timeout to its clock reading, which a value near the
  // 64-bit limit would overflow.
  const timespec t = timeout_to_timespec(timeout);
  __kernel_timespec ts{};
  ts.tv_sec = t.tv_sec;
  ts.tv_nsec = t.tv_nsec;
  return enter_result(io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr));
}

std::size_t IoUringDemux::harvest(std::span<ReadyEvent> ready) noexcept {
  std::size_t count = 0;
  unsigned seen = 0;
  unsigned head = 0;
  io_uring_cqe* cqe = nullptr;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (count == ready.size()) break;
    ++seen;
    const std::uint64_t data = cqe->user_data;
    const auto fd = static_cast<int>(static_cast<std::uint32_t>(data));
    Slot* s = slot(fd);
    // Cancels, and polls of a removed, modified or reused registration, end here.
    if (data == cancel_tag || s == nullptr || !s->armed || s->generation != (data >> 32)) continue;
    s->armed = false;
    // EINVAL: a file without a poll method (a regular file) that is not ready for what was asked
    // and never will be: it is always readable and writable, never "except". poll(2) would
    // never report it either, so stay silent and leave it unarmed until modify() changes the
    // interest; re-arming would complete at once, again and again.
    if (cqe->res == -EINVAL) continue;
    queue_arm(fd);
    // ECANCELED with a live generation: the kernel dropped the poll (on a plain ring, when the
    // thread that submitted it exited); re-arm.
    if (cqe->res == -ECANCELED) continue;
    const EventMask ev = cqe->res < 0 ? EventMask::invalid
                                      : from_poll(static_cast<std::uint32_t>(cqe->res), s->events);
    if (any(ev)) ready[count++] = {fd, ev};
  }
  io_uring_cq_advance(&ring_, seen);
  return count;
}

std::error_code IoUringDemux::wait(std::span<ReadyEvent> ready, std::chrono::nanoseconds timeout,
                                   std::size_t& count) {
  // A new thread takes the ring over before harvesting: completions of the old ring are dropped
  // with it and come again from the re-armed polls.
  if (auto ec = own()) return ec;
  // Completions left over from a wait whose span was full go out before anything blocks.
  count = harvest(ready);
  if (count > 0) return {};
  if (auto ec = arm_queued()) return ec;
  if (auto ec = submit_and_wait(timeout)) return ec;
  count = harvest(ready);
  return {};
}

}  // namespace reactor

// TEST-ONLY kqueue(2) emulation over epoll(7); see sys/event.h and docs/kqueue_emulation.md.
//
// A kqueue knote is per (descriptor, filter); an epoll entry is per descriptor with one mask.
// The emulation keeps, per queue, which filters each descriptor has and derives the epoll mask
// from them; on the way out one epoll event becomes up to three kevents.
//
// Files epoll refuses (EPERM: no poll method, e.g. regular files) get knotes evaluated by the
// emulation on every kevent() call instead, as a BSD kernel evaluates a vnode's filters: read
// fires while a regular file's offset is short of its end, write always fires. Other such files
// follow Linux's poll (always readable and writable); except never fires.
#include <sys/event.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace {

enum : unsigned { read_filter = 1, write_filter = 2, except_filter = 4 };

struct Knotes {
  unsigned filters = 0;   // read_filter | write_filter | except_filter
  void* udata[3] = {};    // per filter, as registered
  bool unpolled = false;  // epoll refused the file: not in the epoll set, evaluated per call
};

struct Queue {
  std::unordered_map<int, Knotes> notes;  // by descriptor
};

// All queues, by kqueue descriptor. Never destroyed, so a test's static destructors may still
// close reactors.
struct State {
  std::mutex mutex;
  std::unordered_map<int, Queue> queues;
};
State& state() {
  static auto* s = new State;
  return *s;
}

int filter_bit(short filter) noexcept {
  switch (filter) {
    case EVFILT_READ: return read_filter;
    case EVFILT_WRITE: return write_filter;
    case EVFILT_EXCEPT: return except_filter;
    default: return 0;
  }
}

int filter_index(unsigned bit) noexcept {
  return bit == read_filter ? 0 : bit == write_filter ? 1 : 2;
}

std::uint32_t epoll_mask(unsigned filters) noexcept {
  std::uint32_t mask = 0;
  if ((filters & read_filter) != 0) mask |= EPOLLIN | EPOLLRDHUP;
  if ((filters & write_filter) != 0) mask |= EPOLLOUT;
  if ((filters & except_filter) != 0) mask |= EPOLLPRI;
  return mask;
}

// Makes the epoll entry of `fd` match `filters`. epoll forgets an entry when the last reference
// to its file is closed, and keeps it when a dup() survives; retry the other operation for both.
int sync_epoll(int ep, int fd, unsigned before, unsigned after) noexcept {
  epoll_event ev{};
  ev.events = epoll_mask(after);
  ev.data.fd = fd;
  if (after == 0) return ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr) == 0 ? 0 : errno;
  const int op = before == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (::epoll_ctl(ep, op, fd, &ev) == 0) return 0;
  if (op == EPOLL_CTL_MOD && errno == ENOENT && ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0)
    return 0;
  if (op == EPOLL_CTL_ADD && errno == EEXIST && ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0)
    return 0;
  return errno;
}

// Applies one change; returns 0 or the errno BSD would put in an EV_ERROR entry.
int apply_change(int ep, Queue& q, const struct kevent& change) {
  const unsigned bit = filter_bit(change.filter);
  const unsigned ignored = EV_RECEIPT | EV_ENABLE;
  const unsigned op = change.flags & ~ignored;
  if (bit == 0 || (op != EV_ADD && op != EV_DELETE)) return EINVAL;
  if (change.ident > INT32_MAX) return EBADF;
  const auto fd = static_cast<int>(change.ident);
  Knotes& k = q.notes[fd];
  const unsigned before = k.filters;
  if (op == EV_DELETE) {
    if ((before & bit) == 0) {
      if (before == 0) q.notes.erase(fd);
      return ::fcntl(fd, F_GETFD) == -1 ? EBADF : ENOENT;
    }
    k.filters &= ~bit;
    const int err = k.unpolled ? 0 : sync_epoll(ep, fd, before, k.filters);
    if (k.filters == 0) q.notes.erase(fd);
    return err == ENOENT ? 0 : err;  // ENOENT: epoll already dropped the closed file
  }
  if (::fcntl(fd, F_GETFD) == -1) {
    if (before == 0) q.notes.erase(fd);
    return EBADF;
  }
  k.filters |= bit;
  k.udata[filter_index(bit)] = change.udata;
  if (k.unpolled) return 0;
  if (const int err = sync_epoll(ep, fd, before, k.filters); err != 0) {
    if (err == EPERM && before == 0) {
      k.unpolled = true;  // BSD takes every file: evaluate this one ourselves (see the top)
      return 0;
    }
    k.filters = before;
    if (before == 0) q.notes.erase(fd);
    return err;
  }
  return 0;
}

// Whether the knote `bit` of an unpolled file fires now (see the top of the file).
bool unpolled_fires(int fd, unsigned bit) noexcept {
  if (bit == except_filter) return false;
  if (bit == write_filter) return true;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return true;
  return ::lseek(fd, 0, SEEK_CUR) != st.st_size;  // BSD: data = size - offset, fires when not 0
}

// Appends the firing knotes of the queue's unpolled files to `out`; returns how many.
int unpolled_events(const Queue& q, struct kevent* out, int room) {
  static constexpr struct {
    unsigned bit;
    short filter;
  } kinds[] = {{read_filter, EVFILT_READ}, {write_filter, EVFILT_WRITE}};
  int n = 0;
  for (const auto& [fd, k] : q.notes) {
    if (!k.unpolled) continue;
    for (const auto& kind : kinds) {
      if ((k.filters & kind.bit) != 0 && n < room && unpolled_fires(fd, kind.bit)) {
        out[n] = {};
        EV_SET(&out[n], static_cast<uintptr_t>(fd), kind.filter, 0, 0, 0,
               k.udata[filter_index(kind.bit)]);
        ++n;
      }
    }
  }
  return n;
}

struct kevent make_event(int fd, short filter, unsigned short flags, void* udata) {
  struct kevent ev {};
  EV_SET(&ev, static_cast<uintptr_t>(fd), filter, flags, 0, 0, udata);
  return ev;
}

// Turns one epoll event into kevents for the filters registered on its descriptor. Hang-ups and
// errors, which epoll always reports, are EV_EOF on every registered filter.
int translate(const Queue& q, const epoll_event& ev, struct kevent* out, int room) {
  const auto it = q.notes.find(ev.data.fd);
  if (it == q.notes.end()) return 0;  // deleted while the wait was running
  const Knotes& k = it->second;
  const bool eof = (ev.events & (EPOLLHUP | EPOLLERR)) != 0;
  const auto eof_flag = static_cast<unsigned short>(eof ? EV_EOF : 0);
  int n = 0;
  auto emit = [&](unsigned bit, short filter, bool fired, unsigned short flags) {
    if ((k.filters & bit) != 0 && fired && n < room) {
      out[n++] = make_event(ev.data.fd, filter, flags, k.udata[filter_index(bit)]);
    }
  };
  const bool rdhup = (ev.events & EPOLLRDHUP) != 0;
  emit(read_filter, EVFILT_READ, (ev.events & EPOLLIN) != 0 || rdhup || eof,
       static_cast<unsigned short>(eof_flag | (rdhup ? EV_EOF : 0)));
  emit(write_filter, EVFILT_WRITE, (ev.events & EPOLLOUT) != 0 || eof, eof_flag);
  // An except-only knote would never fire on hang-up in BSD; epoll reports it anyway, so pass it
  // on instead of letting kevent() return early with nothing, again and again.
  const bool only_except = (k.filters & ~except_filter) == 0;
  emit(except_filter, EVFILT_EXCEPT, (ev.events & EPOLLPRI) != 0 || (eof && only_except), eof_flag);
  return n;
}

int wait_epoll(int ep, epoll_event* events, int max, const struct timespec* timeout) {
  const int rc = ::epoll_pwait2(ep, events, max, timeout, nullptr);
  if (rc >= 0 || errno != ENOSYS) return rc;
  // Kernels before 5.11: millisecond resolution, rounded up so no timer wakes early.
  int ms = -1;
  if (timeout != nullptr)
    ms = static_cast<int>(timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000);
  return ::epoll_wait(ep, events, max, ms);
}

}  // namespace

extern "C" int kqueue(void) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -1;
  // The number is new to us or was a queue closed earlier (close() cannot be intercepted):
  // either way, start from nothing.
  std::lock_guard lock(state().mutex);
  state().queues[ep] = Queue{};
  return ep;
}

extern "C" int kevent(int kq, const struct kevent* changelist, int nchanges,
                      struct kevent* eventlist, int nevents, const struct timespec* timeout) {
  int written = 0;
  int fired = 0;  // events of unpolled files, at the front of eventlist
  {
    std::lock_guard lock(state().mutex);
    const auto it = state().queues.find(kq);
    if (it == state().queues.end() || nchanges < 0 || nevents < 0) {
      errno = it == state().queues.end() ? EBADF : EINVAL;
      return -1;
    }
    for (int i = 0; i < nchanges; ++i) {
      const int err = apply_change(kq, it->second, changelist[i]);
      if (err == 0 && (changelist[i].flags & EV_RECEIPT) == 0) continue;
      // BSD: a failed change (or any change with EV_RECEIPT) goes into the event list when
      // there is room; otherwise the call fails with its errno.
      if (written == nevents) {
        errno = err;
        if (err != 0) return -1;
        continue;
      }
      eventlist[written] = changelist[i];
      eventlist[written].flags = EV_ERROR;
      eventlist[written].data = err;
      ++written;
    }
    if (written > 0 || nevents == 0) return written;
    fired = unpolled_events(it->second, eventlist, nevents);
  }
  if (fired == nevents) return fired;
  // Something fired already: collect what epoll has without waiting.
  const struct timespec zero {};
  epoll_event events[64];
  const int room = nevents - fired;
  const int rc = wait_epoll(kq, events, room < 64 ? room : 64, fired > 0 ? &zero : timeout);
  if (rc < 0) return fired > 0 ? fired : -1;
  std::lock_guard lock(state().mutex);
  const Queue& q = state().queues[kq];
  int n = fired;
  for (int i = 0; i < rc && n < nevents; ++i)
    n += translate(q, events[i], eventlist + n, nevents - n);
  return n;
}

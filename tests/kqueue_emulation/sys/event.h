// TEST-ONLY: a small emulation of the BSD kqueue(2) API on top of Linux epoll(7), so that
// demux/kqueue_demux.cpp (written to the real BSD / macOS API) is compiled and runs the whole
// conformance suite on Linux. It is never part of libreactor. See docs/kqueue_emulation.md.
//
// What it covers: kqueue(), kevent() with EVFILT_READ, EVFILT_WRITE and EVFILT_EXCEPT (NOTE_OOB,
// as on macOS and OpenBSD); EV_ADD (EV_ENABLE accepted as the default), EV_DELETE, EV_RECEIPT;
// EV_ERROR entries for failed changes; EV_EOF on hang-up; level-triggered knotes; nanosecond
// timeouts. Everything else (EV_CLEAR, EV_ONESHOT, EV_DISABLE, EV_DISPATCH, other filters) fails
// with EINVAL, so a backend that starts to rely on them is noticed.
//
// Constants use FreeBSD's values (EVFILT_EXCEPT and NOTE_OOB macOS's), so a mix-up with real
// numbers is at least plausible; nothing outside the tests sees them.
#pragma once

#include <stdint.h>
#include <time.h>

struct kevent {
  uintptr_t ident;       // descriptor
  short filter;          // EVFILT_*
  unsigned short flags;  // EV_*
  unsigned int fflags;   // filter flags (NOTE_*)
  intptr_t data;         // EV_ERROR: the errno of a change; else filter data (always 0 here)
  void* udata;           // returned as given
};

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_EXCEPT (-15)

#define EV_ADD 0x0001U
#define EV_DELETE 0x0002U
#define EV_ENABLE 0x0004U
#define EV_DISABLE 0x0008U
#define EV_ONESHOT 0x0010U
#define EV_CLEAR 0x0020U
#define EV_RECEIPT 0x0040U
#define EV_DISPATCH 0x0080U
#define EV_ERROR 0x4000U
#define EV_EOF 0x8000U

#define NOTE_OOB 0x0002U

extern "C" {
/// Creates an (emulated) kernel event queue: an epoll descriptor plus per-queue knote state.
int kqueue(void);
/// Applies `changelist`, then waits for at most `nevents` events or `timeout` (null: forever).
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout);
}

/// Fills a struct kevent, as the BSD macro does.
inline void kqueue_emulation_ev_set(struct kevent* kev, uintptr_t ident, short filter,
                                    unsigned short flags, unsigned int fflags, intptr_t data,
                                    void* udata) {
  kev->ident = ident;
  kev->filter = filter;
  kev->flags = flags;
  kev->fflags = fflags;
  kev->data = data;
  kev->udata = udata;
}
#define EV_SET(kevp, a, b, c, d, e, f) kqueue_emulation_ev_set((kevp), (a), (b), (c), (d), (e), (f))

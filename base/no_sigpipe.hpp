// write_no_sigpipe: the one write path of the library's stream handlers. A write to a pipe, FIFO
// or socket whose reader is gone must come back as EPIPE, never as a SIGPIPE that kills the
// process, whatever kind of descriptor it is and without touching the process's disposition.
// Internal: not installed, the public headers do not include it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace reactor {

/// Gather-writes `iov[0..count)` to `fd` like writev(2), except that a reader that is gone
/// yields -1 with errno EPIPE and never raises SIGPIPE. Sockets are written with
/// sendmsg(MSG_NOSIGNAL); other descriptors with writev while SIGPIPE is blocked in the calling
/// thread, and a SIGPIPE that this write raised is consumed before the thread's mask is restored
/// (one that was already pending is left alone). The signal disposition is never changed.
/// `is_socket` is the caller's hint: true tries sendmsg first and is set to false when the
/// descriptor turns out not to be a socket. EINTR is returned to the caller, not retried.
ssize_t write_no_sigpipe(int fd, const iovec* iov, std::size_t count, bool& is_socket) noexcept;

}  // namespace reactor

// StreamHandler: the base class of a connection-oriented service handler (TCP or Unix-domain).
// It owns its socket, reads into a reusable input buffer, queues output and writes it with gather
// writes, applies backpressure with high/low watermarks, and closes gracefully, half-closes or
// times out idle peers. Subclasses override on_data() and, if they like, the other on_* hooks.
//
// Ownership: a handler passed to StreamHandler::start() (as the Acceptor and Connector do) is
// owned by the framework and deleted right after on_close(), which is always its last call.
// A handler opened with open() is owned by the caller, who must keep it alive until on_close().
// Destroying a caller-owned handler before on_close() withdraws its registration quietly.
//
// Closing. Every way a connection ends, other than destroying its handler, leads to exactly one
// on_close(reason), the handler's last call:
// - close() is graceful: reading stops at once, queued output is still written, and once the
//   queue is empty the socket closes with an empty reason. If the queue has not drained after
//   linger_timeout (a peer that stopped reading), the rest is dropped and the reason is
//   timed_out; a zero linger_timeout waits as long as it takes. The idle timeout does not apply
//   while closing: the linger timeout is that phase's only bound.
// - abort(reason) is immediate: the queue is dropped, the socket closes, on_close() gets
//   `reason`. Its default, an empty reason, reads as a clean close; pass one to tell them apart.
//   abort() also cuts short a close() that is still flushing.
// - The framework aborts by itself on a read or write error (the errno), more than max_input
//   unconsumed (message_size), a send beyond max_output (no_buffer_space), the idle timeout
//   (timed_out, through on_idle) and a hook that throws (state_not_recoverable). A registration
//   ended from outside (the reactor destroyed, the descriptor found closed) gives
//   operation_canceled. The peer's end of stream calls on_peer_closed(), which closes by default.
// After close(), a second close() does nothing; after abort(), or once close() has flushed,
// both do nothing. send() returns false from the first close() or abort() on.
//
// When on_close() comes: never in the middle of another hook of this handler. When the
// connection ends inside one of its hooks (an abort(), a close() with nothing left to flush, the
// last queued byte written, a timeout), the handler is only marked, and the socket is closed and
// on_close() called as the outermost of its hooks returns. When close() or abort() is called
// from anywhere else (another handler's hook, a posted callable, before the loop runs), the
// handler finishes through a notify() to itself, so on_close() arrives on a later turn of the
// loop. Either way the code that closed the handler may keep using it until that code returns
// (`this` and the members stay valid, is_open() is false), and no longer: a framework-owned
// handler is deleted right after on_close(). Inside on_close() the socket is already closed
// (get_handle() is invalid_handle), the queue is empty and the timers are cancelled.
// On a ThreadPoolReactor call close() and abort() only from this handler's own hooks: outside
// them another thread may be running one, and the notify() may run before the caller returns.
//
// Hot path: an echoed message costs one read and one send; interest in write readiness is
// enabled only when a send could not complete and disabled when the queue drains, and buffers
// are reused, so the steady state neither calls into the demultiplexer nor allocates.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/unique_fd.hpp"
#include "handlers/buffer.hpp"
#include "reactor/dispatcher.hpp"

namespace reactor {

/// Tuning of one StreamHandler.
struct StreamOptions {
  /// Bytes asked of each read() (the input buffer grows to at least this).
  std::size_t read_size = 16 * 1024;
  /// Reading from the peer stops when this many bytes wait in the output queue...
  std::size_t high_watermark = 1024 * 1024;
  /// ...and resumes when the queue drains to this many or fewer.
  std::size_t low_watermark = 256 * 1024;
  /// Hard cap on queued output; a send beyond it aborts the connection (no_buffer_space).
  std::size_t max_output = 16 * 1024 * 1024;
  /// Hard cap on input on_data() left unconsumed; beyond it the connection is aborted
  /// (message_size), so a peer cannot make us buffer an endless "line".
  std::size_t max_input = 4 * 1024 * 1024;
  /// Abort after this long without a byte read or written; zero or negative disables the idle
  /// timer, and one past the end of the clock's range (forever) never expires.
  Duration idle_timeout = Duration::zero();
  /// How long close() may wait for the queue to drain before it aborts with timed_out; zero or
  /// negative: as long as it takes (a peer that never reads then holds the connection open), as
  /// is a value past the end of the clock's range (forever).
  Duration linger_timeout = std::chrono::seconds(10);
};

/// Queued output: chunks written with one gather write. Small sends are coalesced into the last
/// chunk; chunk strings are recycled so a connection in steady state does not allocate.
class OutputQueue {
 public:
  /// Bytes queued.
  [[nodiscard]] std::size_t size() const noexcept { return bytes_; }
  /// True when nothing is queued.
  [[nodiscard]] bool empty() const noexcept { return bytes_ == 0; }
  /// Copies `bytes` to the end of the queue.
  void append(std::string_view bytes);
  /// Moves `bytes` to the end of the queue (no copy when it is large).
  void append(std::string&& bytes);
  /// Fills up to `max` iovecs from the front of the queue; returns how many.
  std::size_t gather(iovec* iov, std::size_t max) const noexcept;
  /// Drops the first `n` bytes (written).
  void consume(std::size_t n) noexcept;
  /// Drops everything.
  void clear() noexcept;

 private:
  struct Chunk {
    std::string bytes;
    std::size_t offset = 0;
  };
  std::string fresh_chunk();
  void recycle(std::string&& bytes) noexcept;

  std::vector<Chunk> chunks_;  // live chunks are [head_, size())
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
  std::vector<std::string> spare_;
};

/// Base class of connection handlers. Loop thread only.
class StreamHandler : public EventHandler {
 public:
  /// Takes `socket` (may be empty until a Connector supplies one). Does not register yet.
  StreamHandler(Dispatcher& reactor, UniqueFd socket, const StreamOptions& options = {});
  /// Withdraws a registration still held, without calling on_close.
  ~StreamHandler() override;

  /// Registers `handler` and hands it to the framework, which deletes it after on_close().
  /// Calls on_open() on success. On failure the handler is deleted (no hook called).
  static std::error_code start(std::unique_ptr<StreamHandler> handler);
  /// Registers this caller-owned handler and calls on_open(); the caller keeps it alive until
  /// on_close().
  std::error_code open();

  // ---- output ------------------------------------------------------------------------------

  /// Sends `bytes`: written at once when nothing is queued, else queued. False when the
  /// connection is closing or closed, or when the send failed (the handler is then closing).
  bool send(std::string_view bytes);
  /// Sends a NUL-terminated string (picks the string_view overload for literals).
  bool send(const char* text) { return send(std::string_view(text)); }
  /// As above, taking ownership of `bytes` (saves a copy when it has to be queued).
  bool send(std::string&& bytes);
  /// Sends several pieces with one gather write (e.g. a header and a body).
  bool send(std::initializer_list<std::string_view> pieces);
  /// Bytes waiting in the output queue.
  [[nodiscard]] std::size_t queued() const noexcept { return output_.size(); }

  // ---- flow control and closing ------------------------------------------------------------

  /// Stops reading from the peer (application flow control) until resume_reading().
  void pause_reading();
  /// Undoes pause_reading().
  void resume_reading();
  /// True when the handler reads from the peer now (not paused by anyone or anything).
  [[nodiscard]] bool reading() const noexcept;
  /// True while the output queue holds the peer back (above the high watermark).
  [[nodiscard]] bool backpressured() const noexcept { return backpressure_; }
  /// Graceful close: stop reading, flush the queue (bounded by linger_timeout), then close; see
  /// "Closing" above for when on_close() comes. Does nothing unless the handler is open.
  void close();
  /// Immediate close: drop the queue and close; `reason` (empty: looks like a clean close)
  /// reaches on_close(). Also ends a close() still flushing; otherwise does nothing once closing.
  void abort(std::error_code reason = {});
  /// Half-close: after the queue drains, shut down our sending side (the peer reads EOF) and
  /// keep reading until the peer closes too. send() returns false from here on.
  void shutdown_write();
  /// True from open until close/abort is requested.
  [[nodiscard]] bool is_open() const noexcept { return state_ == State::open; }
  /// Changes the idle timeout (zero or negative disables it; see StreamOptions::idle_timeout).
  void set_idle_timeout(Duration timeout);

  /// The reactor this handler is served by.
  [[nodiscard]] Dispatcher& reactor() const noexcept { return reactor_; }
  /// The socket.
  [[nodiscard]] Handle get_handle() const override { return socket_.get(); }
  /// The options given at construction.
  [[nodiscard]] const StreamOptions& options() const noexcept { return options_; }

 protected:
  /// Called once the handler is registered (and, for a Connector, connected).
  virtual void on_open() {}
  /// New bytes arrived; consume what you used from `input` (the rest stays for next time).
  virtual void on_data(Buffer& input) { input.clear(); }
  /// The peer finished sending (EOF). Default: close() gracefully, flushing what is queued.
  /// Reading has stopped.
  virtual void on_peer_closed() { close(); }
  /// The output queue became empty after a send could not complete (a cue to produce more).
  virtual void on_drained() {}
  /// No byte moved for idle_timeout. Default: abort(std::errc::timed_out).
  virtual void on_idle();
  /// The last call: the connection is closed; `reason` is empty for a clean close (or an abort()
  /// without one), else the socket error, timed_out (idle or linger timeout), message_size,
  /// no_buffer_space, operation_canceled (reactor destroyed, descriptor closed behind our back),
  /// state_not_recoverable (one of this handler's hooks threw; the exception propagates out of
  /// handle_events), or the connect error. The socket is already closed here. A
  /// framework-owned handler is deleted right after.
  virtual void on_close(std::error_code reason) { (void)reason; }

  // The reactor's hooks; subclasses that override them must call these.
  int handle_input(Handle handle) override;
  int handle_output(Handle handle) override;
  int handle_timeout(TimePoint now, const void* arg) override;
  int handle_close(Handle handle, EventMask removed) override;

 private:
  friend class Connector;
  friend class AcceptorBase;  // hands over acceptor_slot_
  enum class State { idle, open, closing, finishing, closed };

  void adopt_socket(UniqueFd socket) noexcept { socket_ = std::move(socket); }
  void finish(std::error_code reason);
  int leave();
  void finalize();
  void complete();
  std::error_code register_now();
  void fail_before_open(std::error_code reason);
  void read_once();
  bool send_pieces(const iovec* iov, std::size_t count, std::string* movable);
  void flush();
  ssize_t gather_write(const iovec* iov, std::size_t count) noexcept;
  void after_output_change();
  void update_interest();
  void touch() noexcept {
    if (idle_armed_) last_activity_ = Clock::now();
  }
  void arm_idle_timer(Duration delay);
  void on_timer(TimePoint now, const void* arg);
  // Runs `body` as one of our hooks (see the definition: nesting count, exceptions).
  template <class Body>
  int run_hook(Body&& body);

  Dispatcher& reactor_;
  UniqueFd socket_;
  StreamOptions options_;
  Buffer input_;
  OutputQueue output_;
  State state_ = State::idle;
  EventMask interest_ = EventMask::none;  // what the reactor has, to skip no-op updates
  std::error_code reason_;
  TimePoint last_activity_{};
  TimerId idle_timer_ = invalid_timer;
  TimerId linger_timer_ = invalid_timer;
  bool idle_armed_ = false;
  bool owned_ = false;           // the framework deletes this after on_close
  int depth_ = 0;                // nesting of our hooks; finalize waits for the outermost
  bool finish_pending_ = false;  // finalize when the outermost hook returns
  bool notified_ = false;        // a deferred finalize is queued with notify()
  bool user_paused_ = false;
  bool backpressure_ = false;
  bool peer_eof_ = false;
  bool shutdown_wanted_ = false;
  bool write_shut_ = false;
  bool is_socket_ = true;  // false once sendmsg said ENOTSOCK (a pipe end): see gather_write
  std::shared_ptr<void> acceptor_slot_;  // an Acceptor's connection count; released on destruction
};

}  // namespace reactor

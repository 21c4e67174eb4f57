// StreamHandler and OutputQueue: reading, queued gather writes, watermarks, closing.
//
// Lifetime: a handler may be closed from inside its own hooks (often from user code deep in
// on_data) or from outside them (another connection's callback). Finalising, which ends the
// registration, calls on_close and may delete the handler, therefore happens only at the exit of
// the outermost of our own hooks (depth_ counts them) or, when the close came from outside, from
// a notify() the loop delivers later. No code touches the handler after finalising.
#include "handlers/stream_handler.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/no_sigpipe.hpp"

namespace reactor {
namespace {

// Small sends are appended to the last chunk up to this size; larger ones get their own.
constexpr std::size_t coalesce_limit = 16 * 1024;
// Recycled chunk strings kept per connection, and the largest one worth keeping.
constexpr std::size_t max_spare_chunks = 4;
constexpr std::size_t max_spare_capacity = 64 * 1024;
// iovecs per gather write; the kernel takes up to IOV_MAX (1024), fewer keeps the stack small.
constexpr std::size_t max_iov = 64;

// Timer arguments: which of the handler's timers fired.
constexpr char idle_tag = 'i';
constexpr char linger_tag = 'l';

bool would_block(int error) noexcept {
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

}  // namespace

// ---- OutputQueue -------------------------------------------------------------------------------

std::string OutputQueue::fresh_chunk() {
  if (spare_.empty()) return {};
  std::string s = std::move(spare_.back());
  spare_.pop_back();
  return s;
}

void OutputQueue::recycle(std::string&& bytes) noexcept {
  if (spare_.size() < max_spare_chunks && bytes.capacity() <= max_spare_capacity &&
      spare_.capacity() > spare_.size()) {
    bytes.clear();
    spare_.push_back(std::move(bytes));
  }
}

void OutputQueue::append(std::string_view bytes) {
  if (bytes.empty()) return;
  if (head_ < chunks_.size()) {
    std::string& last = chunks_.back().bytes;
    if (last.size() + bytes.size() <= std::max(coalesce_limit, last.capacity())) {
      last.append(bytes);
      bytes_ += bytes.size();
      return;
    }
  }
  if (spare_.capacity() < max_spare_chunks) spare_.reserve(max_spare_chunks);
  chunks_.push_back({fresh_chunk(), 0});
  chunks_.back().bytes.assign(bytes);
  bytes_ += bytes.size();
}

void OutputQueue::append(std::string&& bytes) {
  if (bytes.size() < coalesce_limit) {
    append(std::string_view(bytes));
    return;
  }
  bytes_ += bytes.size();
  chunks_.push_back({std::move(bytes), 0});
}

std::size_t OutputQueue::gather(iovec* iov, std::size_t max) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = head_; i < chunks_.size() && n < max; ++i, ++n) {
    const Chunk& c = chunks_[i];
    iov[n].iov_base = const_cast<char*>(c.bytes.data() + c.offset);
    iov[n].iov_len = c.bytes.size() - c.offset;
  }
  return n;
}

void OutputQueue::consume(std::size_t n) noexcept {
  n = std::min(n, bytes_);
  bytes_ -= n;
  while (n > 0 && head_ < chunks_.size()) {
    Chunk& c = chunks_[head_];
    const std::size_t left = c.bytes.size() - c.offset;
    if (n < left) {
      c.offset += n;
      return;
    }
    n -= left;
    recycle(std::move(c.bytes));
    ++head_;
  }
  if (head_ == chunks_.size()) {
    chunks_.clear();  // keeps the vector's capacity
    head_ = 0;
  } else if (head_ >= 64 && head_ * 2 >= chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutputQueue::clear() noexcept { consume(bytes_); }

// ---- StreamHandler: opening --------------------------------------------------------------------

StreamHandler::StreamHandler(Dispatcher& reactor, UniqueFd socket, const StreamOptions& options)
    : reactor_(reactor), socket_(std::move(socket)), options_(options) {
  options_.low_watermark = std::min(options_.low_watermark, options_.high_watermark);
  options_.read_size = std::max<std::size_t>(options_.read_size, 512);
}

StreamHandler::~StreamHandler() {
  // Destroyed while registered (a caller-owned handler deleted early): leave quietly.
  if (state_ != State::idle && state_ != State::closed && socket_.valid() &&
      reactor_.handler(socket_.get()) == this) {
    (void)reactor_.remove_handler(socket_.get(), EventMask::all_io, CloseHook::skip);
  }
}

std::error_code StreamHandler::register_now() {
  if (state_ != State::idle) return errc::already_registered;
  if (!socket_.valid()) return errc::invalid_handle;
  // Acceptor and Connector sockets are non-blocking already; others are made so here, once.
  const int flags = ::fcntl(socket_.get(), F_GETFL);
  if (flags < 0) return last_system_error();
  if ((flags & O_NONBLOCK) == 0 && ::fcntl(socket_.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return last_system_error();
  }
  if (auto ec = reactor_.register_handler(this, EventMask::read)) return ec;
  interest_ = EventMask::read;
  state_ = State::open;
  if (options_.idle_timeout > Duration::zero()) arm_idle_timer(options_.idle_timeout);
  return {};
}

template <class Body>
int StreamHandler::run_hook(Body&& body) {
  ++depth_;
  try {
    body();
  } catch (...) {
    // A subclass hook threw half-way through: whatever it was doing to this connection cannot be
    // trusted, and unwinding skipped our bookkeeping. Abort the connection (on_close gets
    // state_not_recoverable), finalise it as usual, and let the exception reach the caller of
    // handle_events as the contract says. Without this the nesting count stayed raised and the
    // connection was never finalised: a leaked handler and descriptor.
    abort(std::make_error_code(std::errc::state_not_recoverable));
    if (state_ == State::finishing) finish_pending_ = true;
    leave();  // may delete this
    throw;
  }
  if (state_ == State::finishing) finish_pending_ = true;
  return leave();  // may delete this: must stay the last statement
}

std::error_code StreamHandler::start(std::unique_ptr<StreamHandler> handler) {
  if (!handler) return errc::invalid_argument;
  if (auto ec = handler->register_now()) return ec;
  StreamHandler* h = handler.release();
  h->owned_ = true;
  h->run_hook([h] { h->on_open(); });  // may finalise (and delete) the handler
  return {};
}

std::error_code StreamHandler::open() {
  if (auto ec = register_now()) return ec;
  run_hook([this] { on_open(); });
  return {};
}

void StreamHandler::fail_before_open(std::error_code reason) {
  // A connect that never produced a connection: on_close is still the one last call.
  state_ = State::finishing;
  reason_ = reason;
  owned_ = true;
  complete();
}

// ---- input -------------------------------------------------------------------------------------

int StreamHandler::handle_input(Handle handle) {
  return run_hook([this, handle] {
    if (handle == invalid_handle) {
      notified_ = false;  // our deferred finalise (see finish)
    } else if (state_ == State::open && !peer_eof_) {
      read_once();
    }
  });
}

void StreamHandler::read_once() {
  // One read per readiness event: level-triggered demultiplexing reports the rest, and other
  // connections get their turn in between.
  const auto room = input_.prepare(options_.read_size);
  const ssize_t n = ::read(socket_.get(), room.data(), room.size());
  if (n > 0) {
    input_.commit(static_cast<std::size_t>(n));
    touch();
    on_data(input_);
    if (state_ == State::open && input_.size() > options_.max_input) {
      abort(std::make_error_code(std::errc::message_size));
    }
    return;
  }
  if (n == 0) {
    peer_eof_ = true;  // EOF stays readable forever: stop asking
    update_interest();
    on_peer_closed();
    return;
  }
  if (would_block(errno)) return;
  abort(last_system_error());  // ECONNRESET and friends end only this connection
}

// ---- output ------------------------------------------------------------------------------------

ssize_t StreamHandler::gather_write(const iovec* iov, std::size_t count) noexcept {
  for (;;) {
    // Sockets, pipes and FIFOs alike: a reader that is gone is EPIPE, which ends this
    // connection, never a process-killing SIGPIPE.
    const ssize_t n = write_no_sigpipe(socket_.get(), iov, count, is_socket_);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool StreamHandler::send_pieces(const iovec* iov, std::size_t count, std::string* movable) {
  if (state_ != State::open || shutdown_wanted_) return false;
  std::size_t written = 0;
  if (output_.empty()) {
    // Nothing queued: write now. Usually all of it goes, and the reactor is not involved.
    const ssize_t n = gather_write(iov, count);
    if (n < 0) {
      if (!would_block(errno)) {
        abort(last_system_error());
        return false;
      }
    } else {
      written = static_cast<std::size_t>(n);
      if (n > 0) touch();
    }
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += iov[i].iov_len;
  if (written == total) return true;
  if (output_.size() + (total - written) > options_.max_output) {
    abort(std::make_error_code(std::errc::no_buffer_space));
    return false;
  }
  if (movable != nullptr && written == 0) {
    output_.append(std::move(*movable));
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t len = iov[i].iov_len;
      const std::size_t skip = std::min(written, len);
      written -= skip;
      output_.append(
          std::string_view(static_cast<const char*>(iov[i].iov_base) + skip, len - skip));
    }
  }
  after_output_change();
  return true;
}

bool StreamHandler::send(std::string_view bytes) {
  if (bytes.empty()) return state_ == State::open;
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  return send_pieces(&iov, 1, nullptr);
}

bool StreamHandler::send(std::string&& bytes) {
  if (bytes.empty()) return state_ == State::open;
  iovec iov{bytes.data(), bytes.size()};
  return send_pieces(&iov, 1, &bytes);
}

bool StreamHandler::send(std::initializer_list<std::string_view> pieces) {
  iovec iov[max_iov];
  std::size_t n = 0;
  for (std::string_view p : pieces) {
    if (p.empty()) continue;
    if (n == max_iov) {
      if (!send_pieces(iov, n, nullptr)) return false;
      n = 0;
    }
    iov[n++] = {const_cast<char*>(p.data()), p.size()};
  }
  return n == 0 ? state_ == State::open : send_pieces(iov, n, nullptr);
}

int StreamHandler::handle_output(Handle handle) {
  return run_hook([this, handle] {
    if (handle != invalid_handle && (state_ == State::open || state_ == State::closing)) flush();
  });
}

void StreamHandler::flush() {
  while (!output_.empty()) {
    iovec iov[max_iov];
    const std::size_t count = output_.gather(iov, max_iov);
    std::size_t asked = 0;
    for (std::size_t i = 0; i < count; ++i) asked += iov[i].iov_len;
    const ssize_t n = gather_write(iov, count);
    if (n < 0) {
      if (would_block(errno)) break;
      abort(last_system_error());
      return;
    }
    touch();
    output_.consume(static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < asked) break;  // the socket buffer is full
  }
  after_output_change();
  if (!output_.empty()) return;
  if (shutdown_wanted_ && !write_shut_) {
    write_shut_ = true;
    (void)::shutdown(socket_.get(), SHUT_WR);
  }
  if (state_ == State::closing) {
    finish({});
  } else if (state_ == State::open) {
    on_drained();
  }
}

void StreamHandler::after_output_change() {
  // Hysteresis between the marks, so a queue hovering near one mark does not flip interest
  // (a system call each time) on every message.
  if (!backpressure_ && output_.size() > options_.high_watermark) {
    backpressure_ = true;
  } else if (backpressure_ && output_.size() <= options_.low_watermark) {
    backpressure_ = false;
  }
  update_interest();
}

void StreamHandler::update_interest() {
  if (state_ != State::open && state_ != State::closing) return;
  EventMask want = EventMask::none;
  if (reading()) want |= EventMask::read;
  if (!output_.empty()) want |= EventMask::write;
  if (want == interest_) return;  // the common case: nothing to tell the reactor
  if (auto ec = reactor_.set_interest(socket_.get(), want)) {
    abort(ec);
    return;
  }
  interest_ = want;
}

// ---- flow control and closing ------------------------------------------------------------------

bool StreamHandler::reading() const noexcept {
  return state_ == State::open && !peer_eof_ && !user_paused_ && !backpressure_;
}

void StreamHandler::pause_reading() {
  user_paused_ = true;
  update_interest();
}

void StreamHandler::resume_reading() {
  user_paused_ = false;
  update_interest();
}

void StreamHandler::close() {
  if (state_ != State::open) return;
  if (output_.empty()) {
    finish({});
    return;
  }
  state_ = State::closing;
  update_interest();  // stops reading; keeps write interest to flush
  if (options_.linger_timeout > Duration::zero()) {
    auto id = reactor_.schedule_timer(this, &linger_tag, options_.linger_timeout);
    if (id) linger_timer_ = *id;
  }
}

void StreamHandler::abort(std::error_code reason) {
  if (state_ != State::open && state_ != State::closing) return;
  output_.clear();
  finish(reason);
}

void StreamHandler::shutdown_write() {
  if (state_ != State::open || shutdown_wanted_) return;
  shutdown_wanted_ = true;
  if (output_.empty()) {
    write_shut_ = true;
    (void)::shutdown(socket_.get(), SHUT_WR);
  }
}

void StreamHandler::set_idle_timeout(Duration timeout) {
  options_.idle_timeout = timeout;
  if (idle_armed_) {
    (void)reactor_.cancel_timer(idle_timer_);
    idle_armed_ = false;
  }
  if (state_ == State::open && timeout > Duration::zero()) arm_idle_timer(timeout);
}

void StreamHandler::arm_idle_timer(Duration delay) {
  auto id = reactor_.schedule_timer(this, &idle_tag, delay);
  if (!id) return;
  idle_timer_ = *id;
  idle_armed_ = true;
  last_activity_ = Clock::now();
}

void StreamHandler::on_idle() { abort(std::make_error_code(std::errc::timed_out)); }

int StreamHandler::handle_timeout(TimePoint now, const void* arg) {
  return run_hook([this, now, arg] { on_timer(now, arg); });
}

void StreamHandler::on_timer(TimePoint now, const void* arg) {
  if (arg == &linger_tag) {
    linger_timer_ = invalid_timer;
    if (state_ == State::closing) abort(std::make_error_code(std::errc::timed_out));
  } else if (arg == &idle_tag && idle_armed_) {
    // The timer is not moved on every byte (that would cost a heap update per message): it
    // fires on schedule and re-arms for the rest of the period if there was activity.
    idle_armed_ = false;
    const TimePoint last = last_activity_;
    const Duration limit = options_.idle_timeout;
    if (state_ == State::open && limit > Duration::zero()) {
      // Saturating: with a limit near Duration::max() the idle moment is TimePoint::max().
      const TimePoint idle_at = deadline_after(last, limit);
      if (now >= idle_at) {
        on_idle();
      } else {
        arm_idle_timer(time_until(idle_at, now));
        last_activity_ = last;
      }
    }
  }
}

// ---- finalising --------------------------------------------------------------------------------

void StreamHandler::finish(std::error_code reason) {
  if (state_ != State::open && state_ != State::closing) return;
  state_ = State::finishing;
  reason_ = reason;
  if (depth_ > 0) {
    finish_pending_ = true;
    return;
  }
  // Asked from outside our hooks: the caller may still use this handler (say, iterating over a
  // list of connections), so finalise from the loop instead of deleting it under their feet.
  if (!notified_ && !reactor_.notify(this, EventMask::read)) notified_ = true;
}

int StreamHandler::leave() {
  if (--depth_ == 0 && finish_pending_) {
    finish_pending_ = false;
    finalize();  // may delete this: must stay the last statement
  }
  return 0;
}

void StreamHandler::finalize() {
  const Handle h = socket_.get();
  if (h != invalid_handle && reactor_.handler(h) == this) {
    (void)reactor_.remove_handler(h, EventMask::all_io);  // calls handle_close → complete()
    return;
  }
  complete();
}

int StreamHandler::handle_close(Handle handle, EventMask /*removed*/) {
  if (state_ == State::idle || state_ == State::closed) return 0;
  if (reactor_.handler(handle) == this) return 0;  // only part of the registration went
  if (state_ != State::finishing) {
    // Removed by someone else: the reactor is being destroyed, or the descriptor was closed
    // behind our back.
    state_ = State::finishing;
    reason_ = std::make_error_code(std::errc::operation_canceled);
  }
  if (depth_ > 0) {
    finish_pending_ = true;  // inside one of our hooks: the outermost one completes
    return 0;
  }
  complete();  // may delete this
  return 0;
}

void StreamHandler::complete() {
  state_ = State::closed;
  (void)reactor_.cancel_timers(this);
  (void)reactor_.purge_notifications(this);
  idle_armed_ = false;
  socket_.reset();
  output_.clear();
  const bool owned = owned_;
  on_close(reason_);
  if (owned) delete this;
}

}  // namespace reactor

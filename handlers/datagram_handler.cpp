// DatagramHandler: bounded receive batches into one reused buffer, and non-queueing sends.
#include "handlers/datagram_handler.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace reactor {

DatagramHandler::DatagramHandler(Dispatcher& reactor, const DatagramOptions& options)
    : reactor_(reactor), options_(options) {
  options_.max_datagram = std::max<std::size_t>(1, options_.max_datagram);
  options_.max_per_event = std::max<std::size_t>(1, options_.max_per_event);
}

DatagramHandler::~DatagramHandler() { close(); }

std::error_code DatagramHandler::open(const SocketAddress& address) {
  if (socket_.valid()) return errc::already_registered;
  UniqueFd fd(::socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return last_system_error();
  if (::bind(fd.get(), address.native(), address.length()) != 0) return last_system_error();
  auto local = SocketAddress::local_of(fd.get());
  if (!local) return local.error();
  socket_ = std::move(fd);
  local_ = *local;
  buffer_.resize(options_.max_datagram + 1);  // one spare byte detects truncation
  if (auto ec = reactor_.register_handler(this, EventMask::read)) {
    socket_.reset();
    return ec;
  }
  registered_ = true;
  return {};
}

std::error_code DatagramHandler::send_to(std::string_view bytes, const SocketAddress& to) {
  if (!socket_.valid()) return errc::invalid_handle;
  ssize_t n = 0;
  do {
    n = ::sendto(socket_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL, to.native(), to.length());
  } while (n < 0 && errno == EINTR);
  return n < 0 ? last_system_error() : std::error_code{};
}

void DatagramHandler::close() {
  if (registered_) {
    (void)reactor_.remove_handler(socket_.get(), EventMask::all_io, CloseHook::skip);
    registered_ = false;
  }
  socket_.reset();
}

int DatagramHandler::handle_input(Handle /*handle*/) {
  for (std::size_t i = 0; i < options_.max_per_event && socket_.valid(); ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(socket_.get(), buffer_.data(), buffer_.size(), 0,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno != EINTR) on_error(last_system_error());
      continue;
    }
    const auto size = static_cast<std::size_t>(n);
    const bool truncated = size > options_.max_datagram;
    on_datagram(std::string_view(buffer_.data(), std::min(size, options_.max_datagram)),
                SocketAddress::from_native(reinterpret_cast<sockaddr*>(&from), len), truncated);
  }
  return 0;
}

int DatagramHandler::handle_close(Handle /*handle*/, EventMask /*removed*/) {
  registered_ = false;  // the reactor dropped us (e.g. it is being destroyed)
  return 0;
}

}  // namespace reactor

// hand_off: an Acceptor factory that spreads accepted connections over the reactors of a
// ReactorPool, round-robin: one acceptor accepts, each connection then lives on one reactor (and
// its thread) for good. The alternative, one SO_REUSEPORT acceptor per reactor, needs nothing
// from here: the kernel balances.
#pragma once

#include <functional>
#include <memory>
#include <utility>

#include "base/unique_fd.hpp"
#include "handlers/acceptor.hpp"
#include "handlers/socket_address.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor_pool.hpp"

namespace reactor {

/// An Acceptor<Service> factory that hands every accepted socket to the next reactor of
/// `pool`, where `make` builds the Service and StreamHandler::start() takes it over. Use it with
/// an acceptor registered on any reactor of the pool. The acceptor's max_connections does not
/// count handed-off connections (they belong to other reactors). `pool` must outlive the
/// acceptor.
template <class Service>
typename Acceptor<Service>::Factory hand_off(
    ReactorPool& pool,
    std::function<std::unique_ptr<Service>(Reactor&, UniqueFd, const SocketAddress&)> make) {
  return [&pool, make = std::move(make)](Dispatcher&, UniqueFd socket,
                                         const SocketAddress& peer) -> std::unique_ptr<Service> {
    const std::size_t i = pool.next_index();
    Reactor& target = pool.at(i);
    // std::function needs a copyable callable; the descriptor travels in a shared holder.
    auto fd = std::make_shared<UniqueFd>(std::move(socket));
    (void)pool.post_to(i, [&target, make, fd, peer] {
      if (auto service = make(target, std::move(*fd), peer)) {
        (void)StreamHandler::start(std::move(service));  // failure deletes it
      }
    });
    return nullptr;  // the acceptor keeps nothing: the socket now belongs to `target`
  };
}

/// hand_off() with each Service built as Service(reactor, std::move(socket)).
template <class Service>
typename Acceptor<Service>::Factory hand_off(ReactorPool& pool) {
  return hand_off<Service>(pool, [](Reactor& r, UniqueFd fd, const SocketAddress&) {
    return std::make_unique<Service>(r, std::move(fd));
  });
}

}  // namespace reactor

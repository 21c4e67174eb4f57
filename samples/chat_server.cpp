// chat_server: a line-based chat room. Every line a client sends goes to every other client as
// "user<N>: <line>". Slow clients are handled by backpressure with bounded buffers: a client's
// queue may grow to a few hundred KiB; one that still does not read is disconnected, so a stalled
// reader can neither grow the server's memory nor stall the room.
//
//   chat_server [--port N] [--backend select|poll|epoll]
//
// --port 0 picks a free port; the banner on stdout says which. SIGINT / SIGTERM exit with 0.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/acceptor.hpp"
#include "handlers/stream_handler.hpp"
#include "reactor/reactor.hpp"
#include "sample_stats.hpp"

namespace {

using reactor::Buffer;
using reactor::Reactor;
using reactor::UniqueFd;

class ChatClient;

// The members of the room; connections add and remove themselves.
class Room {
 public:
  void join(ChatClient* c) { members_.push_back(c); }
  void leave(ChatClient* c) { std::erase(members_, c); }
  // Sends `line` to everyone but `from`.
  void broadcast(const ChatClient* from, std::string_view line);
  [[nodiscard]] std::size_t size() const { return members_.size(); }

 private:
  std::vector<ChatClient*> members_;
};

// Per-connection limits: small enough that thousands of slow clients stay affordable.
reactor::StreamOptions chat_options() {
  reactor::StreamOptions o;
  o.high_watermark = 64 * 1024;  // stop reading a client that does not read its own output
  o.low_watermark = 16 * 1024;
  o.max_output = 256 * 1024;  // beyond this the client is too slow: disconnect it
  o.max_input = 8 * 1024;     // longest line
  return o;
}

// One chat participant. Owned by the framework; leaves the room in on_close, its last call.
class ChatClient final : public reactor::StreamHandler {
 public:
  ChatClient(Reactor& r, UniqueFd socket, Room& room, unsigned id)
      : StreamHandler(r, std::move(socket), chat_options()),
        room_(room),
        prefix_("user" + std::to_string(id) + ": ") {}

  // Queues one framed message (prefix + line + newline) with a single gather send.
  void deliver(std::string_view prefix, std::string_view line) { send({prefix, line, "\n"}); }
  [[nodiscard]] const std::string& prefix() const { return prefix_; }

 protected:
  void on_open() override {
    room_.join(this);
    send("welcome " + prefix_.substr(0, prefix_.size() - 2) + "\n");
  }
  void on_data(Buffer& input) override {
    std::string_view data = input.view();
    std::size_t used = 0;
    for (;;) {
      const auto nl = data.find('\n', used);
      if (nl == std::string_view::npos) break;
      std::string_view line = data.substr(used, nl - used);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      room_.broadcast(this, line);
      used = nl + 1;
    }
    input.consume(used);  // a partial line waits for the rest
  }
  void on_close(std::error_code /*reason*/) override { room_.leave(this); }

 private:
  Room& room_;
  std::string prefix_;
};

void Room::broadcast(const ChatClient* from, std::string_view line) {
  // deliver() never deletes a member synchronously (a failed send closes it from the loop),
  // so iterating here is safe.
  for (ChatClient* c : members_) {
    if (c != from && c->is_open()) c->deliver(from->prefix(), line);
  }
}

class Stopper final : public reactor::EventHandler {
 public:
  explicit Stopper(Reactor& r) : reactor_(r) {}
  int handle_signal(int /*signum*/) override {
    reactor_.end_event_loop();
    return 0;
  }

 private:
  Reactor& reactor_;
};

}  // namespace

int main(int argc, char** argv) {
  const bool show_stats = sample::take_stats_flag(argc, argv);
  int port = 7001;
  reactor::Backend backend = reactor::Backend::best;
  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    char* end = nullptr;
    if (value != nullptr && flag == "--port" &&
        (port = static_cast<int>(std::strtol(value, &end, 10)), *end == '\0') && port >= 0 &&
        port <= 65535) {
      continue;
    }
    if (value != nullptr && flag == "--backend" && !reactor::parse_backend(value, backend))
      continue;
    std::fprintf(stderr, "usage: %s [--port N] [--backend select|poll|epoll]\n", argv[0]);
    return 2;
  }
  Room room;  // outlives the reactor, whose destruction closes the remaining clients
  try {
    Reactor r(backend);
    sample::StatsReporter stats(r, show_stats);
    unsigned next_id = 1;
    reactor::Acceptor<ChatClient> acceptor(
        r, [&](Reactor& rr, UniqueFd socket, const reactor::SocketAddress&) {
          return std::make_unique<ChatClient>(rr, std::move(socket), room, next_id++);
        });
    const auto address = reactor::SocketAddress::loopback_v4(static_cast<std::uint16_t>(port));
    if (auto ec = acceptor.open(address)) {
      std::fprintf(stderr, "chat_server: cannot listen on %s: %s\n", address.to_string().c_str(),
                   ec.message().c_str());
      return 1;
    }
    Stopper stopper(r);
    (void)r.register_signal(SIGINT, &stopper);
    (void)r.register_signal(SIGTERM, &stopper);
    std::printf("chat_server listening on %s (backend %s)\n",
                acceptor.local_address().to_string().c_str(),
                std::string(reactor::backend_name(r.backend())).c_str());
    std::fflush(stdout);
    if (auto ec = r.run_event_loop()) {
      std::fprintf(stderr, "chat_server: %s\n", ec.message().c_str());
      return 1;
    }
    acceptor.close();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "chat_server: %s\n", e.what());
    return 1;
  }
  return 0;
}

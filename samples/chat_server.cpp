// chat_server: a line-based chat room. Every line a client sends goes to every other client as
// "user<N>: <line>". Slow clients are handled by backpressure with bounded buffers: a client's
// queue may grow to a few hundred KiB; one that still does not read is disconnected, so a stalled
// reader can neither grow the server's memory nor stall the room.
//
//   chat_server [--port N] [--backend NAME] [--threads N] [--stats]
//
// --port 0 picks a free port; the banner on stdout says which. SIGINT / SIGTERM exit with 0.
//
// --threads N > 1: a ReactorPool of N reactors, each with its own Room of the members it serves.
// A line goes at once to the sender's own room and, batched per read, is posted to every other
// reactor, which hands it to its members: no member is ever touched by a thread other than its
// reactor's. Lines of one sender arrive everywhere in the order sent; lines of two senders on
// different reactors may be seen in different orders by different members (there is no global
// order across threads). Bytes posted to a reactor and not yet delivered are bounded: above
// 1 MiB the sending clients stop being read until that reactor has caught up.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/stream_handler.hpp"
#include "reactor/reactor_pool.hpp"
#include "sample_server.hpp"

namespace {

using reactor::Buffer;
using reactor::UniqueFd;

constexpr sample::Program program{"chat_server"};

class ChatClient;
class Room;

// The rooms of a ReactorPool, one per reactor (index i belongs to pool.at(i)).
struct Hub {
  reactor::ReactorPool* pool = nullptr;
  std::vector<std::unique_ptr<Room>> rooms;
};

// Undelivered bytes posted to one reactor: above the high mark the senders pause; when the
// reactor has drained below the low mark it resumes them.
constexpr std::size_t backlog_high = 1024 * 1024;
constexpr std::size_t backlog_low = 256 * 1024;

// The members served by one reactor; connections add and remove themselves. Everything but
// backlog_ / pressure_ is used on that reactor's thread only.
class Room {
 public:
  // `hub` is null with one reactor: then there is nobody to post to.
  explicit Room(Hub* hub = nullptr, std::size_t index = 0) : hub_(hub), index_(index) {}

  void join(ChatClient* c) { members_.push_back(c); }
  void leave(ChatClient* c) {
    std::erase(members_, c);
    std::erase(held_, c);
  }
  // Sends `line` from `from` to every member here but `from`, and keeps a framed copy for the
  // other reactors (sent by post_remote).
  void broadcast(const ChatClient* from, std::string_view line);
  // Posts the lines `from` broadcast since the last call to every other reactor.
  void post_remote(ChatClient* from);
  [[nodiscard]] std::size_t size() const { return members_.size(); }

 private:
  void deliver_batch(const std::string& framed);
  void resume_held();

  Hub* hub_;
  std::size_t index_;
  std::vector<ChatClient*> members_;
  std::string outgoing_;                 // framed lines waiting for post_remote
  std::vector<ChatClient*> held_;        // senders paused for another reactor's backlog
  std::atomic<std::size_t> backlog_{0};  // bytes posted to this room, not yet delivered
  std::atomic<bool> pressure_{false};    // some sender paused because of backlog_
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
  // Any dispatcher StreamHandler accepts (a template, so no reactor type is named here).
  template <class Loop>
  ChatClient(Loop& r, UniqueFd socket, Room& room, unsigned id)
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
    room_.post_remote(this);
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
  if (hub_ != nullptr) outgoing_.append(from->prefix()).append(line).append("\n");
}

void Room::post_remote(ChatClient* from) {
  if (hub_ == nullptr || outgoing_.empty()) return;
  // One immutable copy shared by every reactor it goes to.
  auto framed = std::make_shared<const std::string>(std::move(outgoing_));
  outgoing_.clear();
  bool hold = false;
  for (const auto& room : hub_->rooms) {
    Room* other = room.get();
    if (other == this) continue;
    other->backlog_.fetch_add(framed->size());
    (void)hub_->pool->post_to(other->index_, [other, framed] { other->deliver_batch(*framed); });
    if (other->backlog_.load() > backlog_high) {
      // Raise the flag first, then look again: if the backlog is still at or above the low mark,
      // the decrement that takes it below happens after our flag and will see it (and resume
      // us); if it is already below, nobody would resume us, so do not pause.
      other->pressure_.store(true);
      if (other->backlog_.load() >= backlog_low) hold = true;
    }
  }
  if (hold && std::find(held_.begin(), held_.end(), from) == held_.end()) {
    from->pause_reading();
    held_.push_back(from);
  }
}

void Room::deliver_batch(const std::string& framed) {
  for (ChatClient* c : members_) {
    if (c->is_open()) c->send(std::string_view(framed));
  }
  const std::size_t left = backlog_.fetch_sub(framed.size()) - framed.size();
  if (left < backlog_low && pressure_.exchange(false)) {
    // Whoever paused for us may be on any reactor: each resumes its own held senders.
    for (const auto& room : hub_->rooms) {
      Room* r = room.get();
      (void)hub_->pool->post_to(r->index_, [r] { r->resume_held(); });
    }
  }
}

void Room::resume_held() {
  std::vector<ChatClient*> held;
  held.swap(held_);
  for (ChatClient* c : held) c->resume_reading();
}

// --threads 1: one Reactor and one Room on the main thread.
int serve_single(const sample::ServerArgs& args) {
  Room room;  // outlives the reactor, whose destruction closes the remaining clients
  reactor::Reactor r(args.backend);
  unsigned next_id = 1;
  auto make = [&](reactor::Dispatcher& rr, UniqueFd socket) {
    return std::make_unique<ChatClient>(rr, std::move(socket), room, next_id++);
  };
  return sample::serve_on<ChatClient>(program, r, args, make, {.close_listeners_first = true});
}

// --threads N > 1: a ReactorPool, one Room per reactor, one acceptor on reactor 0 handing each
// client to the next reactor in turn (ReactorPool::hand_off). Why one acceptor rather than one
// SO_REUSEPORT listener per reactor: chat connections are few and long-lived, so the extra post
// per connection costs nothing, and round-robin spreads even two or three members over the
// reactors (the kernel's hash does not), which is what makes the cross-reactor path the normal
// one. User numbers come from one atomic counter.
int serve_pool(const sample::ServerArgs& args) {
  Hub hub;  // outlives the pool: the reactors' destruction closes clients, which leave rooms
  reactor::ReactorPool pool(args.threads, sample::reactor_options(args));
  hub.pool = &pool;
  for (std::size_t i = 0; i < pool.size(); ++i)
    hub.rooms.push_back(std::make_unique<Room>(&hub, i));
  std::atomic<unsigned> next_id{1};
  // The factory runs on the reactor the client was handed to; `r` is that reactor.
  auto make = [&](reactor::Dispatcher& r, UniqueFd socket) {
    std::size_t i = 0;
    while (&pool.at(i) != &r) ++i;
    return std::make_unique<ChatClient>(r, std::move(socket), *hub.rooms[i], next_id.fetch_add(1));
  };
  return sample::serve_on<ChatClient>(program, pool, args, sample::Spread::hand_off, make,
                                      {.close_listeners_first = true});
}

}  // namespace

int main(int argc, char** argv) {
  return sample::server_main(program, argc, argv, {.port = 7001},
                             "A line-based chat room: every line goes to every other client.",
                             [](const sample::ServerArgs& args) {
                               return args.threads == 1 ? serve_single(args) : serve_pool(args);
                             });
}

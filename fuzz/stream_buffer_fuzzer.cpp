// libFuzzer target for the stream handler's buffering: the input Buffer (handlers/buffer.hpp)
// and the OutputQueue of handlers/stream_handler.hpp, driven without sockets. The input is a
// script of operations (append, prepare/commit as a read does, consume, line framing as the chat
// server does, partial writes through gather/consume) applied both to the real types and to a
// plain std::string model; after every step the two must hold the same bytes, in order.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "handlers/buffer.hpp"
#include "handlers/stream_handler.hpp"

namespace {

using fuzz::check;

// Reads the script: one byte at a time, zero once exhausted.
class Script {
 public:
  Script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::size_t number() { return static_cast<std::size_t>(byte()) << 8 | byte(); }
  // Up to `n` bytes of the script itself as payload.
  std::string_view bytes(std::size_t n) {
    n = std::min(n, size_ - pos_);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Neither side may grow without bound on a long script.
constexpr std::size_t max_model = 1 << 20;

void check_input(const reactor::Buffer& in, const std::string& model) {
  check(in.size() == model.size(), "Buffer size differs from the model");
  check(in.empty() == model.empty(), "Buffer empty() differs from the model");
  check(in.view() == model, "Buffer bytes differ from the model");
  check(in.capacity() >= in.size(), "Buffer holds more than its capacity");
}

void check_output(const reactor::OutputQueue& out, const std::string& model) {
  check(out.size() == model.size(), "OutputQueue size differs from the model");
  check(out.empty() == model.empty(), "OutputQueue empty() differs from the model");
}

// A "write" of at most `limit` bytes: what gather() offers must be the front of the model.
std::size_t partial_write(reactor::OutputQueue& out, std::string& model, std::size_t max_iov,
                          std::size_t limit) {
  iovec iov[64];
  const std::size_t n = out.gather(iov, std::min<std::size_t>(max_iov, 64));
  std::string offered;
  for (std::size_t i = 0; i < n; ++i) {
    check(iov[i].iov_len > 0, "gather() offered an empty chunk");
    offered.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  }
  check(offered.size() <= model.size(), "gather() offered more than is queued");
  check(model.compare(0, offered.size(), offered) == 0, "gather() offered bytes out of order");
  check(n == 0 || !offered.empty(), "gather() offered iovecs without bytes");
  check(!model.empty() == (n > 0), "gather() offered nothing while bytes are queued");
  const std::size_t written = std::min(limit, offered.size());
  out.consume(written);
  model.erase(0, written);
  return written;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Script s(data, size);
  reactor::Buffer in;
  std::string in_model;
  reactor::OutputQueue out;
  std::string out_model;
  while (!s.done()) {
    switch (s.byte() % 10) {
      case 0: {  // bytes arrive (append)
        const auto b = s.bytes(s.byte());
        if (in_model.size() + b.size() > max_model) break;
        in.append(b);
        in_model.append(b);
        break;
      }
      case 1: {  // a read: prepare room, fill part of it, commit (possibly more than was filled)
        const std::size_t want = s.number() + 1;
        if (in_model.size() + want > max_model) break;
        auto room = in.prepare(want);
        check(room.size() >= want, "prepare() gave less room than asked");
        const auto b = s.bytes(std::min<std::size_t>(room.size(), s.byte()));
        std::memcpy(room.data(), b.data(), b.size());
        in.commit(b.size());
        in_model.append(b);
        break;
      }
      case 2: {  // the handler used a prefix
        const std::size_t n = s.number();
        in.consume(n);
        in_model.erase(0, std::min(n, in_model.size()));
        break;
      }
      case 3:
        in.clear();
        in_model.clear();
        break;
      case 4: {  // line framing: take one complete line, as the chat server does
        const auto view = in.view();
        const auto lf = view.find('\n');
        if (lf == std::string_view::npos) break;
        const std::string line(view.substr(0, lf));
        check(line == in_model.substr(0, lf), "framed line differs from the model");
        in.consume(lf + 1);
        in_model.erase(0, lf + 1);
        break;
      }
      case 5: {  // a small send queued (coalesced into the last chunk)
        const auto b = s.bytes(s.byte());
        if (out_model.size() + b.size() > max_model) break;
        out.append(b);
        out_model.append(b);
        break;
      }
      case 6: {  // a large send moved into the queue
        const std::size_t n = s.number() * 2;
        if (out_model.size() + n > max_model) break;
        std::string big(n, static_cast<char>('a' + out_model.size() % 26));
        out_model.append(big);
        out.append(std::move(big));
        break;
      }
      case 7: {  // a partial gather write
        const std::size_t max_iov = s.byte() % 64 + 1;
        partial_write(out, out_model, max_iov, s.number());
        break;
      }
      case 8: {  // echo: the input goes to the output queue, as echo_server does
        out.append(in.view());
        out_model.append(in_model);
        in.clear();
        in_model.clear();
        if (out_model.size() > max_model) {
          out.clear();
          out_model.clear();
        }
        break;
      }
      case 9:
        out.clear();
        out_model.clear();
        break;
    }
    check_input(in, in_model);
    check_output(out, out_model);
  }
  // Draining the queue completely yields exactly the model's bytes.
  for (int i = 0; i < 100000 && !out_model.empty(); ++i) partial_write(out, out_model, 64, 1 << 20);
  check(out.empty() && out_model.empty(), "the queue did not drain");
  return 0;
}

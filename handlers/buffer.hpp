// Buffer: a growable byte buffer with a consumed prefix, reused across reads so the steady state
// of a connection allocates nothing. StreamHandler's input buffer is one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace reactor {

/// Bytes received and not yet consumed, with room to read more behind them.
class Buffer {
 public:
  /// The unconsumed bytes.
  [[nodiscard]] std::string_view view() const noexcept {
    return {storage_.data() + begin_, end_ - begin_};
  }
  /// Pointer to the first unconsumed byte.
  [[nodiscard]] const char* data() const noexcept { return storage_.data() + begin_; }
  /// Number of unconsumed bytes.
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  /// True when nothing is left to consume.
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  /// Drops the first `n` bytes (all of them when `n` exceeds size()).
  void consume(std::size_t n) noexcept {
    begin_ += std::min(n, size());
    if (begin_ == end_) begin_ = end_ = 0;  // empty again: next read starts at the front
  }
  /// Drops everything; keeps the memory.
  void clear() noexcept { begin_ = end_ = 0; }
  /// Appends bytes.
  void append(std::string_view bytes) {
    auto room = prepare(bytes.size());
    if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
    commit(bytes.size());
  }
  /// At least `n` writable bytes after the data; fill them, then commit() what was written.
  std::span<char> prepare(std::size_t n) {
    if (storage_.size() - end_ < n) make_room(n);
    return {storage_.data() + end_, storage_.size() - end_};
  }
  /// Marks `n` bytes of the last prepare() as data.
  void commit(std::size_t n) noexcept { end_ += std::min(n, storage_.size() - end_); }
  /// Bytes of memory held (for tests and statistics).
  [[nodiscard]] std::size_t capacity() const noexcept { return storage_.size(); }

 private:
  void make_room(std::size_t n) {
    // Slide the data to the front first: a connection that consumes what it reads never grows.
    if (begin_ > 0) {
      std::memmove(storage_.data(), storage_.data() + begin_, size());
      end_ -= begin_;
      begin_ = 0;
    }
    if (storage_.size() - end_ < n) storage_.resize(std::max(storage_.size() * 2, end_ + n));
  }

  std::vector<char> storage_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace reactor

// loadgen: the loopback load generator of the echo comparison. Opens C connections to an echo
// server, keeps D messages of S bytes in flight on each, verifies every echoed byte, and over a
// measured window (after a warm-up) reports messages/s, MB/s, p50/p99 round-trip latency and the
// server's CPU time per message, read from /proc/PID/stat (utime + stime) at both ends of the
// window. Optionally opens N idle connections first, which stay open and silent.
//
//   loadgen --port P [--conns C] [--depth D] [--size S] [--idle N] [--seconds T]
//           [--warmup W] [--server-pid PID] [--label TEXT]
//
// Prints one JSON object on stdout. Exit status 1 when any echoed byte was wrong, a connection
// failed, or nothing was measured. Single-threaded on purpose: pin it to one core (taskset), the
// server to another; its own CPU use is reported so a saturated client is visible.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "flag_pairs.hpp"

namespace {

// The byte stream of connection c is pattern_[(offset + c * stride) % period]: pseudo-random, so
// a lost, repeated, reordered or misrouted message is caught by a plain memcmp.
constexpr std::size_t pattern_period = 65536;
constexpr std::size_t conn_stride = 977;

struct Options {
  int port = 0;
  int conns = 1;
  int depth = 1;
  std::size_t size = 64;
  int idle = 0;
  double seconds = 2.0;
  double warmup = 0.5;
  long server_pid = 0;
  std::string label;
};

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + ts.tv_nsec;
}

// Server CPU seconds so far (user + system, all threads), from /proc/PID/stat; -1 if unreadable.
double process_cpu_seconds(long pid) {
  if (pid <= 0) return -1;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char line[1024];
  const bool ok = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  const char* p = ok ? std::strrchr(line, ')') : nullptr;  // the name may contain spaces
  if (p == nullptr) return -1;
  unsigned long utime = 0, stime = 0;
  // After ") ": state, then fields 4..13, then utime (14) and stime (15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) !=
      2)
    return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The same in nanoseconds from the scheduler (/proc/PID/task/*/schedstat): finer than the tick
// resolution of /proc/PID/stat, reported beside it as a cross-check.
double process_sched_seconds(long pid) {
  if (pid <= 0) return -1;
  char dir_path[64];
  std::snprintf(dir_path, sizeof dir_path, "/proc/%ld/task", pid);
  DIR* dir = ::opendir(dir_path);
  if (dir == nullptr) return -1;
  double total = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string path = std::string(dir_path) + "/" + e->d_name + "/schedstat";
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) continue;
    unsigned long long ns = 0;
    if (std::fscanf(f, "%llu", &ns) == 1) total += static_cast<double>(ns) * 1e-9;
    std::fclose(f);
  }
  ::closedir(dir);
  return total;
}

double own_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One active connection: D messages in flight, every echoed byte checked.
struct Connection {
  int fd = -1;
  std::size_t shift = 0;               // where this connection's stream starts in the pattern
  std::uint64_t sent_msgs = 0;         // messages handed to the send queue
  std::uint64_t done_msgs = 0;         // messages whose last byte came back
  std::uint64_t tx_bytes = 0;          // bytes the kernel accepted
  std::uint64_t rx_bytes = 0;          // bytes received and verified
  bool want_write = false;             // EPOLLOUT armed
  std::vector<std::uint64_t> sent_at;  // ring of D send times
};

class LoadGen {
 public:
  explicit LoadGen(const Options& o) : o_(o), pattern_(2 * pattern_period) {
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (std::size_t i = 0; i < pattern_period; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      pattern_[i] = pattern_[i + pattern_period] = static_cast<unsigned char>(x >> 24);
    }
    rx_buffer_.resize(65536);
  }

  bool open() {
    for (int i = 0; i < o_.idle; ++i) {
      const int fd = connect_loopback(o_.port);
      if (fd < 0) return fail("idle connect");
      idle_fds_.push_back(fd);
    }
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(o_.conns));
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      Connection& c = conns_[i];
      c.fd = connect_loopback(o_.port);
      if (c.fd < 0) return fail("connect");
      ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
      c.shift = (i * conn_stride) % pattern_period;
      c.sent_at.assign(static_cast<std::size_t>(o_.depth), 0);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) return fail("epoll_ctl");
    }
    return true;
  }

  bool run() {
    const std::uint64_t start = now_ns();
    for (auto& c : conns_) {
      for (int d = 0; d < o_.depth; ++d) queue_message(c, start);
      if (!flush(c)) return false;
    }
    const std::uint64_t t0 = start + static_cast<std::uint64_t>(o_.warmup * 1e9);
    const std::uint64_t t1 = t0 + static_cast<std::uint64_t>(o_.seconds * 1e9);
    std::vector<epoll_event> events(1024);
    for (;;) {
      const int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 1000);
      if (n < 0 && errno != EINTR) return fail("epoll_wait");
      const std::uint64_t now = now_ns();
      if (!measuring_ && now >= t0) begin_window(now);
      if (measuring_ && now >= t1) return end_window(now), true;
      for (int i = 0; i < n; ++i) {
        Connection& c = conns_[events[i].data.u64];
        if ((events[i].events & EPOLLOUT) && !flush(c)) return false;
        if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !receive(c, now)) return false;
      }
      if (n == 0) return fail("no echo for a second");
    }
  }

  void report() const {
    std::vector<std::uint32_t> lat = latencies_;
    auto pct = [&](double q) -> double {
      if (lat.empty()) return 0;
      const auto k = static_cast<std::size_t>(q * static_cast<double>(lat.size() - 1));
      std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
      return lat[k] / 1000.0;
    };
    const double secs = static_cast<double>(window_ns_) * 1e-9;
    const double msgs = static_cast<double>(window_msgs_);
    const double p50 = pct(0.50), p99 = pct(0.99);
    auto per_msg = [&](double cpu) { return cpu >= 0 && msgs > 0 ? cpu * 1e6 / msgs : -1.0; };
    std::printf(
        "{\"label\":\"%s\",\"conns\":%d,\"depth\":%d,\"size\":%zu,\"idle\":%d,\"seconds\":%.3f,"
        "\"messages\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
        "\"server_cpu_s\":%.3f,\"server_cpu_us_per_msg\":%.4f,\"server_sched_us_per_msg\":%.4f,"
        "\"server_cpu_pct\":%.1f,\"client_cpu_pct\":%.1f,\"verified_bytes\":%llu}\n",
        o_.label.c_str(), o_.conns, o_.depth, o_.size, o_.idle, secs,
        static_cast<unsigned long long>(window_msgs_), msgs / secs,
        msgs * static_cast<double>(o_.size) * 2 / secs / 1e6, p50, p99, server_cpu_,
        per_msg(server_cpu_), per_msg(server_sched_), server_cpu_ * 100 / secs,
        client_cpu_ * 100 / secs, static_cast<unsigned long long>(verified_bytes()));
  }

 private:
  bool fail(const char* what) {
    std::fprintf(stderr, "loadgen: %s: %s\n", what, errno ? std::strerror(errno) : "failed");
    return false;
  }

  std::uint64_t verified_bytes() const {
    std::uint64_t total = 0;
    for (const auto& c : conns_) total += c.rx_bytes;
    return total;
  }

  void begin_window(std::uint64_t now) {
    measuring_ = true;
    window_start_ = now;
    msgs_at_start_ = total_msgs_;
    cpu_at_start_ = process_cpu_seconds(o_.server_pid);
    sched_at_start_ = process_sched_seconds(o_.server_pid);
    own_at_start_ = own_cpu_seconds();
    latencies_.reserve(1 << 22);
  }

  void end_window(std::uint64_t now) {
    window_ns_ = now - window_start_;
    window_msgs_ = total_msgs_ - msgs_at_start_;
    const double cpu = process_cpu_seconds(o_.server_pid);
    const double sched = process_sched_seconds(o_.server_pid);
    server_cpu_ = cpu >= 0 && cpu_at_start_ >= 0 ? cpu - cpu_at_start_ : -1;
    server_sched_ = sched >= 0 && sched_at_start_ >= 0 ? sched - sched_at_start_ : -1;
    client_cpu_ = own_cpu_seconds() - own_at_start_;
  }

  void queue_message(Connection& c, std::uint64_t now) {
    c.sent_at[c.sent_msgs % c.sent_at.size()] = now;
    ++c.sent_msgs;
  }

  // Sends what is queued; arms EPOLLOUT only while the kernel refuses part of it.
  bool flush(Connection& c) {
    const std::uint64_t target = c.sent_msgs * o_.size;
    while (c.tx_bytes < target) {
      const std::size_t at = (c.tx_bytes + c.shift) % pattern_period;
      const std::size_t len = std::min<std::uint64_t>(target - c.tx_bytes, pattern_period);
      const ssize_t w = ::send(c.fd, pattern_.data() + at, len, MSG_NOSIGNAL);
      if (w < 0 && errno == EAGAIN) break;
      if (w < 0) return fail("send");
      c.tx_bytes += static_cast<std::uint64_t>(w);
    }
    const bool pending = c.tx_bytes < target;
    if (pending != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (pending ? EPOLLOUT : 0u);
      ev.data.u64 = static_cast<std::uint64_t>(&c - conns_.data());
      ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = pending;
    }
    return true;
  }

  // Reads what arrived, checks it, completes messages and sends one new message per completed.
  bool receive(Connection& c, std::uint64_t now) {
    const ssize_t n = ::recv(c.fd, rx_buffer_.data(), rx_buffer_.size(), 0);
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return fail(n == 0 ? "server closed a connection" : "recv");
    const auto len = static_cast<std::size_t>(n);
    if (c.rx_bytes + len > c.tx_bytes) return fail("echoed more than was sent");
    const std::size_t at = (c.rx_bytes + c.shift) % pattern_period;
    if (std::memcmp(rx_buffer_.data(), pattern_.data() + at, len) != 0) {
      errno = 0;
      return fail("echoed bytes differ from those sent");
    }
    c.rx_bytes += len;
    bool queued = false;
    while (c.rx_bytes >= (c.done_msgs + 1) * o_.size) {
      const std::uint64_t sent = c.sent_at[c.done_msgs % c.sent_at.size()];
      ++c.done_msgs;
      ++total_msgs_;
      if (measuring_)
        latencies_.push_back(
            static_cast<std::uint32_t>(std::min<std::uint64_t>(now - sent, UINT32_MAX)));
      queue_message(c, now);
      queued = true;
    }
    return !queued || flush(c);
  }

  Options o_;
  std::vector<unsigned char> pattern_;
  std::vector<unsigned char> rx_buffer_;
  std::vector<Connection> conns_;
  std::vector<int> idle_fds_;
  int epfd_ = -1;
  bool measuring_ = false;
  std::uint64_t total_msgs_ = 0;
  std::uint64_t window_start_ = 0, window_ns_ = 0, window_msgs_ = 0, msgs_at_start_ = 0;
  double cpu_at_start_ = -1, sched_at_start_ = -1, own_at_start_ = 0;
  double server_cpu_ = -1, server_sched_ = -1, client_cpu_ = 0;
  std::vector<std::uint32_t> latencies_;
};

bool parse(int argc, char** argv, Options& o) {
  using bench::into;
  return bench::parse_flag_pairs(argc, argv,
                                 {{"--port", into(o.port)},
                                  {"--conns", into(o.conns)},
                                  {"--depth", into(o.depth)},
                                  {"--size", into(o.size)},
                                  {"--idle", into(o.idle)},
                                  {"--seconds", into(o.seconds)},
                                  {"--warmup", into(o.warmup)},
                                  {"--server-pid", into(o.server_pid)},
                                  {"--label", into(o.label)}}) &&
         o.port > 0 && o.conns > 0 && o.depth > 0 && o.size > 0 && o.size <= pattern_period &&
         o.seconds > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: %s --port P [--conns C] [--depth D] [--size S] [--idle N] [--seconds T] "
                 "[--warmup W] [--server-pid PID] [--label TEXT]\n",
                 argv[0]);
    return 2;
  }
  // Idle connections need descriptors: take the hard limit.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);

  LoadGen gen(o);
  if (!gen.open() || !gen.run()) return 1;
  gen.report();
  return 0;
}

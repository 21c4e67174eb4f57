// The coroutine echo server passes the same integrity test as the callback one: each binary is
// launched on each backend, many concurrent loopback connections send random payloads in random
// chunks, every byte must come back in order, and SIGTERM must end the server with status 0.
// The coroutine server also runs with --threads 2 (a PoolExecutor, one SO_REUSEPORT listener per
// reactor): then its --stats output at exit must show that both reactors served connections.
// The client here is plain poll(2), independent of the code under test.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>

#include <cstdlib>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "futures_support.hpp"

namespace reactor::test {
namespace {

struct ServerParam {
  std::string binary_env;  // environment variable holding the binary's path
  std::string banner;      // the banner's first word
  std::string backend;
  int threads = 1;  // --threads (given only when > 1)

  [[nodiscard]] std::string name() const {
    return banner + "_" + backend + (threads > 1 ? "_" + std::to_string(threads) + "_threads" : "");
  }
};

void PrintTo(const ServerParam& p, std::ostream* os) { *os << p.name(); }

// One client connection: sends its payload in random chunks while reading the echo back.
struct Conn {
  UniqueFd fd;
  std::string payload;
  std::size_t sent = 0;
  std::string received;
};

// Drives every connection with poll(2) until all echoes are complete or `limit` passes.
bool run_clients(int port, int connections, unsigned seed, std::string& failure) {
  std::mt19937 rng(seed);
  std::vector<Conn> conns(connections);
  const sockaddr_in addr = loopback_address(static_cast<std::uint16_t>(port));
  for (auto& c : conns) {
    c.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      failure = "connect failed";
      return false;
    }
    ::fcntl(c.fd.get(), F_SETFL, O_NONBLOCK);
    c.payload.resize(1 + rng() % (128 * 1024));
    for (char& ch : c.payload) ch = static_cast<char>(rng());
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  std::vector<pollfd> fds(conns.size());
  std::vector<char> buf(65536);
  for (;;) {
    std::size_t open = 0;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const bool done = c.received.size() == c.payload.size();
      fds[i] = {done ? -1 : c.fd.get(),
                static_cast<short>(POLLIN | (c.sent < c.payload.size() ? POLLOUT : 0)), 0};
      open += done ? 0 : 1;
    }
    if (open == 0) break;
    if (Clock::now() > deadline) {
      failure = "timed out with " + std::to_string(open) + " connections unfinished";
      return false;
    }
    if (::poll(fds.data(), fds.size(), 100) < 0) continue;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      if ((fds[i].revents & POLLOUT) != 0 && c.sent < c.payload.size()) {
        const std::size_t chunk =
            std::min<std::size_t>(c.payload.size() - c.sent, 1 + rng() % 20000);
        const ssize_t n = ::send(c.fd.get(), c.payload.data() + c.sent, chunk, MSG_NOSIGNAL);
        if (n > 0) c.sent += static_cast<std::size_t>(n);
      }
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::read(c.fd.get(), buf.data(), buf.size());
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
          failure = "connection closed early";
          return false;
        }
        if (n > 0) c.received.append(buf.data(), static_cast<std::size_t>(n));
        if (c.received.size() > c.payload.size() ||
            c.received.compare(0, c.received.size(), c.payload, 0, c.received.size()) != 0) {
          failure = "echoed bytes differ";
          return false;
        }
      }
    }
  }
  return true;
}

class EchoIntegrityTest : public ::testing::TestWithParam<ServerParam> {};

TEST_P(EchoIntegrityTest, ConcurrentRandomPayloadsComeBackIntactAndSigtermExitsZero) {
  const char* path = std::getenv(GetParam().binary_env.c_str());
  if (path == nullptr || *path == '\0') GTEST_SKIP() << GetParam().binary_env << " not set";
  const int threads = GetParam().threads;
  std::vector<std::string> extra;
  if (threads > 1) extra = {"--threads", std::to_string(threads), "--stats"};
  child::ServerProcess server(path, GetParam().backend, extra);
  ASSERT_GT(server.port(), 0) << "banner: " << server.banner();
  EXPECT_EQ(server.banner(),
            GetParam().banner + " listening on 127.0.0.1:" + std::to_string(server.port()) +
                " (backend " + GetParam().backend + ")" +
                (threads > 1 ? " with " + std::to_string(threads) + " threads" : ""));
  for (unsigned round = 0; round < 2; ++round) {
    std::string failure;
    EXPECT_TRUE(run_clients(server.port(), 64, 1000 + round, failure)) << failure;
  }
  EXPECT_EQ(server.stop(SIGTERM), 0);  // every thread stopped, or the process would not exit 0
  if (threads == 1) return;
  // --stats: one block per reactor, each reporting the input events it dispatched. 128
  // connections spread by SO_REUSEPORT leave no reactor idle (odds 2^-127 per reactor).
  const std::string stats = child::read_until_eof(server.output_fd(), child::Clock::now() + 10s);
  for (int i = 0; i < threads; ++i) {
    const std::string label = "[reactor " + std::to_string(i) + "/" + std::to_string(threads) + "]";
    const auto at = stats.find(label);
    ASSERT_NE(at, std::string::npos) << label << " missing in:\n" << stats;
    std::smatch m;
    const std::string block = stats.substr(at + label.size());
    ASSERT_TRUE(std::regex_search(block, m, std::regex(" input=([0-9]+)"))) << block;
    EXPECT_GT(std::stoul(m[1].str()), 0UL) << label << " served nothing:\n" << stats;
  }
}

std::vector<ServerParam> servers() {
  std::vector<ServerParam> out;
  for (Backend b : available_backends()) {
    const std::string name(backend_name(b));
    out.push_back({"CORO_ECHO_SERVER", "coro_echo_server", name});
    out.push_back({"CORO_ECHO_SERVER", "coro_echo_server", name, 2});
    out.push_back({"ECHO_SERVER", "echo_server", name});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Servers, EchoIntegrityTest, ::testing::ValuesIn(servers()),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace reactor::test

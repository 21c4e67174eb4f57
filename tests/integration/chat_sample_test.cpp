// chat_server as a whole program, on select, poll and epoll, each with one thread and with
// --threads 2 (a ReactorPool handing clients to the reactors in turn): the banner, lines from real
// clients (nc, socat) broadcast to the others, no echo to the sender, members on different
// reactors hearing each other, clean exit on SIGINT, clients that never read (on the talker's
// reactor and on another) being cut off instead of growing the server's memory, and a flood
// towards a busier reactor paced instead of queued without bound.
#include <gtest/gtest.h>

#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <regex>

#include "sample_process.hpp"

namespace sample_test {
namespace {

// Receives until `text` has arrived (bounded).
std::string wait_for(Client& c, const std::string& text) {
  return c.receive_until(
      [&](const std::string& got) { return got.find(text) != std::string::npos; });
}

class ChatSample : public SampleServerTest<ServerConfig> {
 protected:
  ChatSample() : SampleServerTest("CHAT_SERVER", false) {}
  // A new member of the room, once it has been welcomed.
  Client join() {
    Client c = connect();
    wait_for(c, "welcome");
    return c;
  }
};

TEST_P(ChatSample, LinesFromRealClientsReachEveryoneElse) {
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0) << server.banner();
  EXPECT_TRUE(std::regex_match(server.banner(),
                               std::regex("chat_server listening on 127\\.0\\.0\\.1:[0-9]+ "
                                          "\\(backend " +
                                          backend() + "\\)" + GetParam().banner_suffix())))
      << server.banner();
  // One after the other: with several reactors, user numbers follow the order in which the
  // reactors took their clients over, which is the connection order only when they wait.
  Client a = connect();
  EXPECT_NE(wait_for(a, "welcome user1\n").find("welcome user1\n"), std::string::npos);
  Client b = connect();
  EXPECT_NE(wait_for(b, "welcome user2\n").find("welcome user2\n"), std::string::npos);
  const std::string port = std::to_string(server.port());
  auto nc = run({"nc", "-N", "127.0.0.1", port}, 10s, "hello from nc\n");
  EXPECT_EQ(nc.exit_code, 0) << nc.output;
  EXPECT_NE(wait_for(a, "hello from nc\n").find(": hello from nc\n"), std::string::npos);
  EXPECT_NE(wait_for(b, "hello from nc\n").find(": hello from nc\n"), std::string::npos);
  auto socat = run({"socat", "-t", "1", "-", "TCP:127.0.0.1:" + port}, 10s, "hi from socat\r\n");
  EXPECT_EQ(socat.exit_code, 0) << socat.output;
  EXPECT_NE(wait_for(a, "hi from socat\n").find(": hi from socat\n"), std::string::npos);
  EXPECT_NE(wait_for(b, "hi from socat\n").find(": hi from socat\n"), std::string::npos);
  // A's line reaches B; B's answer is the next thing A sees (A never gets its own line back).
  ASSERT_TRUE(a.send("ping\n"));
  EXPECT_EQ(wait_for(b, "\n"), "user1: ping\n");
  ASSERT_TRUE(b.send("pong\n"));
  EXPECT_EQ(wait_for(a, "\n"), "user2: pong\n");
  // Partial lines wait for their end.
  ASSERT_TRUE(a.send("par"));
  ASSERT_TRUE(a.send("tial\n"));
  EXPECT_EQ(wait_for(b, "\n"), "user1: partial\n");
  EXPECT_EQ(server.stop(SIGINT), 0);
}

TEST_P(ChatSample, ClientThatNeverReadsIsCutOffAndMemoryStaysBounded) {
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0);
  const long rss_before = server.rss_kib();
  // Two slow clients: connected, never read. With two reactors taking clients in turn, slow 1
  // and the talker share reactor 0 and the reader and slow 2 are on reactor 1, so the talker's
  // lines reach slow 2 and the reader through the other reactor.
  Client slow1 = join();
  Client reader = join();
  Client talker = join();
  Client slow2 = join();
  // The talker sends 16 MiB of lines; the reader keeps up; the slow one does not read at all.
  const std::string line = std::string(1000, 'c') + "\n";
  std::string batch;
  for (int i = 0; i < 64; ++i) batch += line;
  const int batches = 256;  // 16 MiB: well beyond what kernel socket buffers can absorb
  std::size_t received = 0;
  std::size_t expected = 0;
  for (int i = 0; i < batches; ++i) {
    ASSERT_TRUE(talker.send(batch));
    expected += 64 * (line.size() + 7);  // "user3: " prefix on every line
    // Keep up: read what has arrived so far (bounded by the expectation, so no wait is needed
    // once everything sent has come back).
    received += reader
                    .receive_until([&](const std::string& got) {
                      return received + got.size() + 256 * 1024 >= expected;
                    })
                    .size();
  }
  received +=
      reader
          .receive_until([&](const std::string& got) { return received + got.size() >= expected; })
          .size();
  EXPECT_EQ(received, expected);
  const long rss_after = server.rss_kib();
  // The slow clients were disconnected: reading their sockets ends in EOF or a reset.
  for (Client* slow : {&slow1, &slow2}) {
    const std::string drained = slow->receive_all(10s);
    std::printf(
        "[ measure  ] %s: talker sent %zu KiB; slow client %d got %zu KiB before being cut "
        "off; server RSS %ld -> %ld KiB\n",
        config_name(GetParam()).c_str(), expected / 1024, slow == &slow1 ? 1 : 2,
        drained.size() / 1024, rss_before, rss_after);
    EXPECT_TRUE(slow->eof());
    EXPECT_LT(drained.size(), expected);  // it missed what came after it was cut off
  }
  if (!sanitized) {
    EXPECT_LT(rss_after - rss_before, 16 * 1024);
  }
  // The room still works.
  ASSERT_TRUE(reader.send("after\n"));
  EXPECT_NE(wait_for(talker, "after\n").find("after\n"), std::string::npos);
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

// One chat member with everything it has received so far.
struct Member {
  explicit Member(int port) : client(port) {}
  // Waits (bounded) until `text` has arrived since the start; true if it has.
  bool heard(const std::string& text) {
    if (seen.find(text) != std::string::npos) return true;
    seen += client.receive_until(
        [&](const std::string& got) { return (seen + got).find(text) != std::string::npos; });
    return seen.find(text) != std::string::npos;
  }
  Client client;
  std::string seen;
};

TEST_P(ChatSample, MembersOnEveryReactorHearEachOtherAndStatsShowWhereTheyAre) {
  ServerProcess& server = start({"--stats"});
  ASSERT_GT(server.port(), 0) << server.banner();
  const int threads = GetParam().threads;
  // Four members, each connected after the previous one was welcomed: clients are handed to the
  // reactors in turn, so with two reactors users 1 and 3 are on reactor 0, users 2 and 4 on 1.
  const int n = 4;
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 1; i <= n; ++i) {
    members.push_back(std::make_unique<Member>(server.port()));
    ASSERT_TRUE(members.back()->client.connected());
    ASSERT_TRUE(members.back()->heard("welcome user" + std::to_string(i) + "\n"))
        << members.back()->seen;
  }
  // Everyone talks; everyone else hears it, whichever reactor serves the speaker.
  for (int i = 1; i <= n; ++i) {
    ASSERT_TRUE(members[i - 1]->client.send("line " + std::to_string(i) + " from its member\n"));
  }
  for (int i = 1; i <= n; ++i) {
    for (int j = 1; j <= n; ++j) {
      if (j == i) continue;
      const std::string line =
          "user" + std::to_string(i) + ": line " + std::to_string(i) + " from its member\n";
      ASSERT_TRUE(members[j - 1]->heard(line))
          << "user" << j << " missed: " << line << "it heard:\n"
          << members[j - 1]->seen;
    }
  }
  // Nobody hears their own line: a last line from user 1 is what user 2 waits for, and by then
  // every earlier line (their own included, had it been sent) reached everyone else.
  ASSERT_TRUE(members[0]->client.send("last\n"));
  for (int j = 2; j <= n; ++j) ASSERT_TRUE(members[j - 1]->heard("user1: last\n"));
  ASSERT_TRUE(members[1]->client.send("reply\n"));
  ASSERT_TRUE(members[0]->heard("user2: reply\n"));
  for (int i = 1; i <= n; ++i) {
    EXPECT_EQ(count_of(members[i - 1]->seen, "user" + std::to_string(i) + ":"), 0)
        << "user" << i << " heard its own line:\n"
        << members[i - 1]->seen;
  }
  // The exit dump (--stats) lists each reactor's members.
  EXPECT_EQ(server.stop(SIGINT), 0);
  const auto blocks =
      reactor_blocks(read_until_eof(server.output_fd(), Clock::now() + 10s), threads);
  ASSERT_EQ(static_cast<int>(blocks.size()), threads);
  for (int r = 0; r < threads; ++r) {
    EXPECT_EQ(count_of(blocks[static_cast<std::size_t>(r)], "::ChatClient interest="), n / threads)
        << "reactor " << r << ":\n"
        << blocks[static_cast<std::size_t>(r)];
  }
}

TEST_P(ChatSample, FloodTowardsABusyReactorIsPacedAndEveryLineArrives) {
  // The talker alone on reactor 0 and 20 readers on reactor 1 (every other client is a filler
  // that leaves at once): reactor 1 has 20 sends per line to reactor 0's one read, so lines
  // posted to it pile up unless the senders are paused. With one thread it is one room.
  ServerProcess& server = start();
  ASSERT_GT(server.port(), 0) << server.banner();
  Member talker(server.port());
  ASSERT_TRUE(talker.heard("welcome user1\n"));
  std::vector<std::unique_ptr<Member>> readers;
  for (int i = 0; i < 20; ++i) {
    readers.push_back(std::make_unique<Member>(server.port()));
    ASSERT_TRUE(readers.back()->heard("welcome"));
    Member filler(server.port());
    ASSERT_TRUE(filler.heard("welcome"));
  }
  const long rss_before = server.rss_kib();
  const std::string line = std::string(200, 'f') + "\n";
  std::string batch;
  for (int i = 0; i < 256; ++i) batch += line;  // 51 KiB
  // 16 MiB where pacing matters (two reactors: remote lines go out in batches, so this is quick
  // even under a sanitizer); 2 MiB with one room, where every line is its own send to each of
  // the 20 readers.
  const int batches = GetParam().threads == 1 ? 40 : 320;
  const std::size_t expected =
      static_cast<std::size_t>(batches) * 256 * (line.size() + std::string("user1: ").size());
  // One poll loop: the talker writes as fast as the server takes it, every reader reads.
  const int talker_fd = talker.client.fd();
  ::fcntl(talker_fd, F_SETFL, ::fcntl(talker_fd, F_GETFL) | O_NONBLOCK);
  std::size_t sent = 0;
  const std::size_t to_send = batch.size() * static_cast<std::size_t>(batches);
  std::vector<std::size_t> got(readers.size(), 0);
  const auto deadline = Clock::now() + 60s;
  char buf[65536];
  auto everyone_has_it = [&] {
    return std::all_of(got.begin(), got.end(), [&](std::size_t g) { return g >= expected; });
  };
  while (!everyone_has_it() && Clock::now() < deadline) {
    std::vector<pollfd> p;
    p.push_back({sent < to_send ? talker_fd : -1, POLLOUT, 0});
    for (const auto& r : readers) p.push_back({r->client.fd(), POLLIN, 0});
    if (::poll(p.data(), p.size(), ms_left(deadline)) <= 0) break;
    if ((p[0].revents & POLLOUT) != 0) {
      const std::size_t at = sent % batch.size();
      const ssize_t n = ::send(talker_fd, batch.data() + at, batch.size() - at, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
    }
    for (std::size_t i = 0; i < readers.size(); ++i) {
      if ((p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::recv(readers[i]->client.fd(), buf, sizeof buf, 0);
      ASSERT_GT(n, 0) << "reader " << i << " was disconnected after " << got[i] << " bytes";
      got[i] += static_cast<std::size_t>(n);
    }
  }
  const long rss_after = server.rss_kib();
  std::printf("[ measure  ] %s: %zu KiB flooded to 20 readers; server RSS %ld -> %ld KiB\n",
              config_name(GetParam()).c_str(), to_send / 1024, rss_before, rss_after);
  EXPECT_EQ(sent, to_send);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected) << "reader " << i;
  // Paced, reactor 1's queue of posts stays near its 1 MiB mark (the server grew by about
  // 0.2-0.7 MiB in our runs); unpaced, the flood waited there and the server grew by 4-8 MiB.
  if (!sanitized) {
    EXPECT_LT(rss_after - rss_before, 3 * 1024);
  }
  EXPECT_EQ(server.stop(SIGTERM), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ChatSample, ::testing::ValuesIn(server_configs({1, 2})),
                         [](const auto& info) { return config_name(info.param); });

}  // namespace
}  // namespace sample_test

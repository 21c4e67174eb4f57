// Unit tests of the kv_server sample's commands and replies.
#include "samples/kv/kv_store.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

class KvStoreTest : public ::testing::Test {
 protected:
  // Runs one command at `now_` and returns its reply.
  std::string run(std::vector<std::string_view> args) {
    std::string reply;
    last_after_ = store_.execute(args, reply, now_);
    return reply;
  }

  kv::KvStore store_;
  kv::Clock::time_point now_ = kv::Clock::time_point{} + 1000h;
  kv::After last_after_ = kv::After::proceed;
};

TEST_F(KvStoreTest, PingAndEcho) {
  EXPECT_EQ(run({"PING"}), "+PONG\r\n");
  EXPECT_EQ(run({"ping", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(run({"ECHO", "a b"}), "$3\r\na b\r\n");
  EXPECT_EQ(run({"ECHO"}), "-ERR wrong number of arguments for 'ECHO'\r\n");
}

TEST_F(KvStoreTest, SetGetDelExists) {
  EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(run({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(run({"get", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"SET", "k", ""}), "+OK\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$0\r\n\r\n");
  EXPECT_EQ(run({"EXISTS", "k", "k", "nope"}), ":2\r\n");
  EXPECT_EQ(run({"DEL", "k", "k", "nope"}), ":1\r\n");
  EXPECT_EQ(run({"EXISTS", "k"}), ":0\r\n");
}

TEST_F(KvStoreTest, SetExpiryOnTheMonotonicClock) {
  EXPECT_EQ(run({"SET", "a", "1", "EX", "10"}), "+OK\r\n");
  EXPECT_EQ(run({"SET", "b", "2", "px", "1500"}), "+OK\r\n");
  EXPECT_EQ(run({"TTL", "a"}), ":10\r\n");
  EXPECT_EQ(run({"PTTL", "b"}), ":1500\r\n");
  EXPECT_EQ(run({"TTL", "none"}), ":-2\r\n");
  now_ += 1499ms;
  EXPECT_EQ(run({"GET", "b"}), "$1\r\n2\r\n");
  now_ += 1ms;
  EXPECT_EQ(run({"GET", "b"}), "$-1\r\n") << "expired exactly at its deadline";
  EXPECT_EQ(run({"TTL", "a"}), ":9\r\n");
  now_ += 9s;
  EXPECT_EQ(run({"EXISTS", "a"}), ":0\r\n");
}

TEST_F(KvStoreTest, SetWithoutExpiryClearsAnOldOne) {
  run({"SET", "k", "v", "EX", "1"});
  EXPECT_EQ(run({"SET", "k", "w"}), "+OK\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":-1\r\n");
  now_ += 2s;
  EXPECT_EQ(run({"GET", "k"}), "$1\r\nw\r\n");
  EXPECT_EQ(store_.purge_expired(now_, 100), 0U) << "the stale deadline must not remove k";
  EXPECT_EQ(run({"GET", "k"}), "$1\r\nw\r\n");
}

TEST_F(KvStoreTest, SetOptionErrors) {
  EXPECT_EQ(run({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time for 'set'\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "EX", "-5"}), "-ERR invalid expire time for 'set'\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "PX", "abc"}), "-ERR invalid expire time for 'set'\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "EX", "99999999999999999"}),
            "-ERR invalid expire time for 'set'\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "EX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "EX", "1", "PX", "1"}), "-ERR syntax error\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(run({"SET", "k"}), "-ERR wrong number of arguments for 'SET'\r\n");
  EXPECT_EQ(run({"EXISTS", "k"}), ":0\r\n") << "failed SETs store nothing";
}

TEST_F(KvStoreTest, SetNxXx) {
  EXPECT_EQ(run({"SET", "k", "1", "XX"}), "$-1\r\n");
  EXPECT_EQ(run({"SET", "k", "1", "NX"}), "+OK\r\n");
  EXPECT_EQ(run({"SET", "k", "2", "NX"}), "$-1\r\n");
  EXPECT_EQ(run({"SET", "k", "3", "XX"}), "+OK\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$1\r\n3\r\n");
}

TEST_F(KvStoreTest, IncrDecr) {
  EXPECT_EQ(run({"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(run({"INCR", "n"}), ":2\r\n");
  EXPECT_EQ(run({"DECR", "n"}), ":1\r\n");
  EXPECT_EQ(run({"DECR", "m"}), ":-1\r\n");
  EXPECT_EQ(run({"INCRBY", "n", "41"}), ":42\r\n");
  EXPECT_EQ(run({"DECRBY", "n", "-8"}), ":50\r\n");
  EXPECT_EQ(run({"GET", "n"}), "$2\r\n50\r\n");
}

TEST_F(KvStoreTest, IncrRejectsNonIntegersAndOverflow) {
  const std::string not_int = "-ERR value is not a 64-bit integer\r\n";
  for (const char* v : {"abc", "1.5", " 1", "01", "+1", "", "99999999999999999999"}) {
    run({"SET", "k", v});
    EXPECT_EQ(run({"INCR", "k"}), not_int) << v;
  }
  run({"SET", "k", "9223372036854775807"});
  EXPECT_EQ(run({"INCR", "k"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$19\r\n9223372036854775807\r\n") << "unchanged";
  run({"SET", "k", "-9223372036854775808"});
  EXPECT_EQ(run({"DECR", "k"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(run({"DECRBY", "k", "-9223372036854775808"}), not_int);
  EXPECT_EQ(run({"INCR", "k", "x"}), "-ERR wrong number of arguments for 'INCR'\r\n");
}

TEST_F(KvStoreTest, IncrKeepsTheExpiry) {
  run({"SET", "n", "5", "PX", "100"});
  EXPECT_EQ(run({"INCR", "n"}), ":6\r\n");
  EXPECT_EQ(run({"PTTL", "n"}), ":100\r\n");
  now_ += 100ms;
  EXPECT_EQ(run({"INCR", "n"}), ":1\r\n") << "an expired key counts as absent";
}

TEST_F(KvStoreTest, MsetMget) {
  EXPECT_EQ(run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(run({"MGET", "a", "x", "b"}), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
  EXPECT_EQ(run({"MSET", "a", "1", "b"}), "-ERR wrong number of arguments for 'MSET'\r\n");
  EXPECT_EQ(run({"MGET"}), "-ERR wrong number of arguments for 'MGET'\r\n");
}

TEST_F(KvStoreTest, QuitAsksToClose) {
  EXPECT_EQ(run({"QUIT"}), "+OK\r\n");
  EXPECT_EQ(last_after_, kv::After::close);
  run({"PING"});
  EXPECT_EQ(last_after_, kv::After::proceed);
}

TEST_F(KvStoreTest, UnknownCommandIsQuotedSafely) {
  EXPECT_EQ(run({"FROB", "x"}), "-ERR unknown command 'FROB'\r\n");
  EXPECT_EQ(run({"a\r\nb"}), "-ERR unknown command 'a  b'\r\n") << "no CRLF inside an error";
  const std::string reply = run({std::string(1000, 'z')});
  EXPECT_LT(reply.size(), 120U) << "the quoted name is bounded";
  EXPECT_EQ(reply.substr(reply.size() - 2), "\r\n");
}

TEST_F(KvStoreTest, PurgeExpiredIsBounded) {
  for (int i = 0; i < 10; ++i) {
    const std::string key = "k" + std::to_string(i);
    run({"SET", key, "v", "PX", "10"});
  }
  run({"SET", "keep", "v"});
  now_ += 10ms;
  EXPECT_EQ(store_.purge_expired(now_, 4), 4U);
  EXPECT_EQ(store_.size(), 7U);
  EXPECT_EQ(store_.purge_expired(now_, 100), 6U);
  EXPECT_EQ(store_.size(), 1U);
}

TEST_F(KvStoreTest, ConfigGetAnswersForRedisBenchmark) {
  EXPECT_EQ(run({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(run({"CONFIG", "GET", "appendonly"}), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  EXPECT_EQ(run({"CONFIG", "GET", "other"}), "*0\r\n");
}

}  // namespace

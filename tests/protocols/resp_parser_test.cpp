// Unit tests of the RESP2 request parser used by the kv_server sample.
#include "samples/kv/resp_parser.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

using kv::RespStatus;

struct Parsed {
  kv::RespResult result;
  std::vector<std::string> args;
};

// Parses `text` from an exactly-sized heap copy, so a read past the span trips ASan.
Parsed parse(const std::string& text, const kv::RespLimits& limits = {}) {
  auto copy = std::make_unique<char[]>(text.size());
  std::copy(text.begin(), text.end(), copy.get());
  std::vector<std::string_view> views;
  Parsed p{kv::parse_command({copy.get(), text.size()}, views, limits), {}};
  for (auto v : views) p.args.emplace_back(v);
  return p;
}

using Args = std::vector<std::string>;

TEST(RespParser, ParsesArrayOfBulkStrings) {
  const std::string text = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n";
  const auto p = parse(text);
  ASSERT_EQ(p.result.status, RespStatus::complete);
  EXPECT_EQ(p.result.consumed, text.size());
  EXPECT_EQ(p.args, (Args{"SET", "k", "v\r\nxy"})) << "bulk strings are binary-safe";
}

TEST(RespParser, EmptyBulkAndBinaryBytes) {
  const std::string text = std::string("*2\r\n$0\r\n\r\n$3\r\n\0\xff\n\r\n", 20);
  const auto p = parse(text);
  ASSERT_EQ(p.result.status, RespStatus::complete);
  EXPECT_EQ(p.args, (Args{"", std::string("\0\xff\n", 3)}));
}

TEST(RespParser, EveryProperPrefixIsIncomplete) {
  const std::string text = "*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
  for (std::size_t n = 0; n < text.size(); ++n) {
    const auto p = parse(text.substr(0, n));
    ASSERT_EQ(p.result.status, RespStatus::incomplete) << "prefix of " << n << " bytes";
    EXPECT_TRUE(p.args.empty());
  }
  EXPECT_EQ(parse(text).result.status, RespStatus::complete);
}

TEST(RespParser, PipelinedCommandsAreConsumedOneAtATime) {
  const std::string one = "*1\r\n$4\r\nPING\r\n";
  const std::string all = one + "PING inline\r\n" + one;
  auto p = parse(all);
  ASSERT_EQ(p.result.status, RespStatus::complete);
  ASSERT_EQ(p.result.consumed, one.size());
  p = parse(all.substr(one.size()));
  ASSERT_EQ(p.result.status, RespStatus::complete);
  EXPECT_EQ(p.args, (Args{"PING", "inline"}));
  EXPECT_EQ(p.result.consumed, 13U);
}

TEST(RespParser, InlineCommands) {
  auto p = parse("  SET  key\tvalue \n");
  ASSERT_EQ(p.result.status, RespStatus::complete);
  EXPECT_EQ(p.args, (Args{"SET", "key", "value"}));
  p = parse("\r\n");
  ASSERT_EQ(p.result.status, RespStatus::complete);
  EXPECT_TRUE(p.args.empty()) << "an empty line is skipped";
  EXPECT_EQ(p.result.consumed, 2U);
  EXPECT_EQ(parse("GET ke").result.status, RespStatus::incomplete);
}

TEST(RespParser, EmptyAndNullArraysAreSkipped) {
  for (const std::string text : {"*0\r\n", "*-1\r\n"}) {
    const auto p = parse(text);
    ASSERT_EQ(p.result.status, RespStatus::complete) << text;
    EXPECT_EQ(p.result.consumed, text.size());
    EXPECT_TRUE(p.args.empty());
  }
}

TEST(RespParser, MalformedFramesAreErrors) {
  const std::string bad[] = {
      "*x\r\n",                     // not a number
      "*\r\n",                      // no number
      "*1\n$4\r\nPING\r\n",         // header without CR
      "*1\r\n+PING\r\n",            // element that is not a bulk string
      "*1\r\n$-1\r\n",              // null bulk in a request
      "*1\r\n$x\r\n",               // bad bulk length
      "*1\r\n$4\r\nPINGxx",         // bulk not followed by CRLF
      "*1\r\n$4\r\nPING\n\n",       // LF LF instead of CRLF
      "*99999999999999999999\r\n",  // too many digits
      "*1\r\n$1 \r\na\r\n",         // blank after the length
  };
  for (const auto& text : bad) {
    const auto p = parse(text);
    EXPECT_EQ(p.result.status, RespStatus::error) << text;
    EXPECT_FALSE(p.result.error.empty());
    EXPECT_TRUE(p.args.empty());
  }
}

TEST(RespParser, LimitsAreEnforced) {
  kv::RespLimits limits;
  limits.max_args = 2;
  limits.max_bulk = 8;
  limits.max_inline = 16;
  limits.max_frame = 30;
  EXPECT_EQ(parse("*3\r\n", limits).result.status, RespStatus::error) << "before the elements";
  EXPECT_EQ(parse("*1\r\n$9\r\n", limits).result.status, RespStatus::error) << "before the bytes";
  EXPECT_EQ(parse("a b c\r\n", limits).result.status, RespStatus::error);
  EXPECT_EQ(parse(std::string(16, 'x'), limits).result.status, RespStatus::error);
  EXPECT_EQ(parse(std::string(15, 'x'), limits).result.status, RespStatus::incomplete);
  EXPECT_EQ(parse("*2\r\n$8\r\n12345678\r\n$8\r\n1234", limits).result.status, RespStatus::error)
      << "the frame would exceed max_frame";
  EXPECT_EQ(parse("*1" + std::string(20, '0'), limits).result.status, RespStatus::error)
      << "a header line longer than max_inline";
}

TEST(RespParser, ArgumentVectorCapacityIsReused) {
  std::vector<std::string_view> args;
  const std::string text = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
  ASSERT_EQ(kv::parse_command({text.data(), text.size()}, args).status, RespStatus::complete);
  const auto* data = args.data();
  ASSERT_EQ(kv::parse_command({text.data(), text.size()}, args).status, RespStatus::complete);
  EXPECT_EQ(args.data(), data);
}

}  // namespace

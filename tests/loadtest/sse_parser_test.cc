#include "loadtest/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loadtest/stream_chunk.h"

namespace specontext::loadtest {
namespace {

const std::string kStream =
    "data: {\"choices\":[{\"index\":0,\"text\":\" Hello\",\"finish_reason\":null}]}\n\n"
    ": keep-alive comment\n\n"
    "event: message\r\ndata: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":"
    "\"length\"}]}\r\n\r\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

TEST(SseParserTest, SplitAnywhereGivesTheSameEvents) {
  std::vector<std::string> whole;
  SseParser().Feed(kStream, whole);
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole.back(), "[DONE]");
  for (size_t step : {1u, 2u, 7u, 50u}) {
    SseParser parser;
    std::vector<std::string> pieces;
    for (size_t at = 0; at < kStream.size(); at += step) {
      parser.Feed(std::string_view(kStream).substr(at, step), pieces);
    }
    EXPECT_EQ(pieces, whole) << "step " << step;
  }
}

TEST(SseParserTest, JoinsMultiLineDataAndWaitsForTheBlankLine) {
  SseParser parser;
  std::vector<std::string> events;
  parser.Feed("data: first\ndata:second\n", events);
  EXPECT_TRUE(events.empty());
  parser.Feed("\n", events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "first\nsecond");
}

TEST(StreamChunkTest, CompletionTextFinishAndUsage) {
  auto text = ParseStreamChunk(R"({"choices":[{"index":0,"text":" Hi","finish_reason":null}]})");
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(text->has_choice);
  EXPECT_EQ(text->text, " Hi");
  EXPECT_FALSE(text->finish_reason);

  auto finish = ParseStreamChunk(R"({"choices":[{"text":"","finish_reason":"length"}]})");
  ASSERT_TRUE(finish.ok());
  EXPECT_TRUE(finish->has_choice);
  EXPECT_TRUE(finish->text.empty());
  EXPECT_EQ(finish->finish_reason, "length");

  auto usage = ParseStreamChunk(
      R"({"choices":[],"usage":{"prompt_tokens":64,"completion_tokens":16,"total_tokens":80}})");
  ASSERT_TRUE(usage.ok());
  EXPECT_FALSE(usage->has_choice);
  EXPECT_EQ(usage->prompt_tokens, 64);
  EXPECT_EQ(usage->completion_tokens, 16);
}

TEST(StreamChunkTest, ChatDeltaDoneAndErrors) {
  auto delta = ParseStreamChunk(R"({"choices":[{"delta":{"role":"assistant","content":"ok"}}]})");
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->text, "ok");
  EXPECT_TRUE(ParseStreamChunk("[DONE]")->done);

  auto error = ParseStreamChunk(R"({"error":{"message":"boom","type":"internal"}})");
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->error, "boom");

  EXPECT_FALSE(ParseStreamChunk("not json").ok());
  EXPECT_FALSE(ParseStreamChunk("[1,2]").ok());
  // Wrongly typed fields are ignored rather than trusted.
  auto odd = ParseStreamChunk(R"({"choices":[{"text":5}],"usage":{"completion_tokens":"x"}})");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->text.empty());
  EXPECT_FALSE(odd->completion_tokens);
}

}  // namespace
}  // namespace specontext::loadtest

// `specontext throughput` end to end on the CPU backend with a tiny preset: every request runs
// to its exact length, and in specontext mode the random head's selections serve decode rows.
#include "server/throughput_command.h"

#include <gtest/gtest.h>

namespace specontext::server {
namespace {

ThroughputOptions Tiny() {
  ThroughputOptions options;
  options.model.model = "preset:tiny-llama";
  options.backend = "cpu";
  options.input_len = 100;
  options.output_len = 8;
  options.num_prompts = 5;
  options.model.scheduler.max_running = 3;  // two requests wait for room
  return options;
}

TEST(ThroughputCommandTest, EveryRequestRunsToItsLength) {
  Result<ThroughputResult> result = RunThroughput(Tiny());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->requests, 5);
  EXPECT_EQ(result->input_tokens, 5 * 100);
  EXPECT_EQ(result->output_tokens, 5 * 8);
  EXPECT_EQ(result->peak_running, 3);
  EXPECT_EQ(result->ttft_seconds.size(), 5u);
  EXPECT_GT(result->decode_steps, 0);
  EXPECT_GT(result->decode_seconds, 0.0);
  EXPECT_LE(result->ttft_seconds.back(), result->seconds);
  EXPECT_EQ(result->specontext.decode_steps, 0);  // no planner in dense mode
}

TEST(ThroughputCommandTest, SpecontextRowsRunSparseWithARandomHead) {
  ThroughputOptions options = Tiny();
  options.attention = "specontext";
  options.model.draft_model = std::string(kRandomDraft);
  options.model.specontext.budget = 32;
  Result<ThroughputResult> result = RunThroughput(options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->output_tokens, 5 * 8);
  // Every generated token but each request's first comes from a decode row, all past B.
  EXPECT_EQ(result->specontext.decode_steps, 5 * 7);
  EXPECT_EQ(result->specontext.sparse_steps, 5 * 7);
}

TEST(ThroughputCommandTest, RequestsLongerThanTheContextAreRefused) {
  ThroughputOptions options = Tiny();
  options.model.max_model_len = 64;
  Result<ThroughputResult> result = RunThroughput(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("--max-model-len"), std::string::npos)
      << result.status().ToString();
}

}  // namespace
}  // namespace specontext::server

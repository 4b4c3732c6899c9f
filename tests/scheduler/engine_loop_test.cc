// The engine loop end to end on the CPU backend with a real tiny model and a real KV store.
#include <gtest/gtest.h>

#include <thread>

#include "tests/scheduler/engine_fixture.h"

namespace specontext::testing {
namespace {

using Outcome = EngineFixture::Outcome;

std::vector<Outcome> RunConcurrently(EngineFixture& engine,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     int max_tokens) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& prompt : prompts) {
    auto stream = engine.loop().Submit(GreedyRequest(prompt, max_tokens));
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    streams.push_back(*stream);
  }
  std::vector<Outcome> outcomes;
  for (auto& stream : streams) outcomes.push_back(EngineFixture::Collect(*stream));
  return outcomes;
}

std::vector<std::vector<int32_t>> Prompts(const std::vector<int>& lengths, int vocab) {
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < lengths.size(); ++i)
    prompts.push_back(MakePrompt(lengths[i], vocab, i + 1));
  return prompts;
}

TEST(EngineLoopTest, BatchedGreedyEqualsEachRequestAlone) {
  EngineFixture batched;
  const auto prompts = Prompts({5, 40, 100, 17}, batched.config().vocab_size);
  const auto together = RunConcurrently(batched, prompts, 12);

  EngineFixture alone_engine;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Outcome alone = alone_engine.Generate(prompts[i], 12);
    EXPECT_EQ(together[i].finish, FinishReason::kLength);
    EXPECT_EQ(together[i].tokens, alone.tokens) << "prompt " << i;
    EXPECT_EQ(together[i].usage.prompt_tokens, static_cast<int>(prompts[i].size()));
    EXPECT_EQ(together[i].usage.completion_tokens, 12);
  }
  EXPECT_EQ(batched.loop().idle_check_failures(), 0);
}

TEST(EngineLoopTest, PrefixCacheHitGivesSameTokensAndCountsCachedTokens) {
  EngineFixture engine;
  const auto prompt = MakePrompt(70, engine.config().vocab_size, 9);
  const Outcome first = engine.Generate(prompt, 8);
  const Outcome second = engine.Generate(prompt, 8);
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_EQ(first.usage.cached_tokens, 0);
  EXPECT_EQ(second.usage.cached_tokens, 64);  // four whole 16-token blocks
}

TEST(EngineLoopTest, ChunkedPrefillMatchesWholePrefill) {
  EngineFixtureOptions small_steps;
  small_steps.scheduler.max_step_tokens = 7;
  EngineFixture chunked(small_steps);
  EngineFixture whole;
  const auto prompts = Prompts({100, 33}, whole.config().vocab_size);
  const auto a = RunConcurrently(chunked, prompts, 10);
  const auto b = RunConcurrently(whole, prompts, 10);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(a[i].tokens, b[i].tokens);
}

// Admission at the maximum length makes the later requests wait rather than preempt.
TEST(EngineLoopTest, ScarceKvDefersWithoutChangingOutputs) {
  EngineFixtureOptions scarce;
  scarce.host_blocks = 2 * 12;  // two layers: 12 blocks (192 positions) per layer in all
  EngineFixture tight(scarce);
  EngineFixture roomy;
  const auto prompts = Prompts({60, 50, 70, 45}, roomy.config().vocab_size);
  const auto a = RunConcurrently(tight, prompts, 40);
  const auto b = RunConcurrently(roomy, prompts, 40);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(a[i].finish, FinishReason::kLength);
    EXPECT_EQ(a[i].tokens, b[i].tokens) << "prompt " << i;
  }
  EXPECT_GT(tight.placement().decisions(MemoryDecision::kDefer), 0);
  EXPECT_LT(tight.loop().preemptions(), 40);  // no thrashing
  EXPECT_EQ(tight.loop().idle_check_failures(), 0);
}

TEST(EngineLoopTest, OversizedRequestFailsAloneOthersFinish) {
  EngineFixtureOptions scarce;
  scarce.host_blocks = 2 * 8;  // 128 positions per sequence at most
  EngineFixture engine(scarce);
  const auto prompts = Prompts({200, 20}, engine.config().vocab_size);
  const auto outcomes = RunConcurrently(engine, prompts, 5);
  EXPECT_EQ(outcomes[0].finish, FinishReason::kError);
  EXPECT_EQ(outcomes[0].error.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(outcomes[1].finish, FinishReason::kLength);
  EXPECT_EQ(outcomes[1].tokens.size(), 5u);
}

TEST(EngineLoopTest, RejectsBadPrompts) {
  EngineFixtureOptions options;
  options.max_model_len = 64;
  EngineFixture engine(options);
  EXPECT_EQ(engine.Generate({}, 4).error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.Generate(MakePrompt(64, 512, 1), 4).error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.Generate({1, 2, 99999}, 4).error.code(), StatusCode::kInvalidArgument);
  // A request that would run past the context stops there with "length".
  const Outcome capped = engine.Generate(MakePrompt(60, 512, 2), 100);
  EXPECT_EQ(capped.finish, FinishReason::kLength);
  EXPECT_EQ(capped.tokens.size(), 4u);
}

TEST(EngineLoopTest, CancelledRequestEndsAndFreesItsKv) {
  EngineFixture engine;
  GenerationRequest request = GreedyRequest(MakePrompt(30, engine.config().vocab_size, 3), 400);
  auto stream = engine.loop().Submit(std::move(request));
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->Next(std::chrono::seconds(30)).has_value());
  (*stream)->Cancel();
  const Outcome outcome = EngineFixture::Collect(**stream);
  EXPECT_EQ(outcome.finish, FinishReason::kAbort);
  EXPECT_LT(outcome.tokens.size(), 399u);
  engine.loop().Stop(std::chrono::milliseconds(0));
  engine.store().DropUnusedPrefixes();
  EXPECT_EQ(engine.store().Usage(Tier::kHost).used_blocks, 0);
  EXPECT_TRUE(engine.store().CheckIntegrity().ok());
}

TEST(EngineLoopTest, FullQueueAnswersResourceExhausted) {
  EngineFixtureOptions options;
  options.scheduler.max_running = 1;
  options.scheduler.max_waiting = 2;
  EngineFixture engine(options);
  int accepted = 0, rejected = 0;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 10; ++i) {
    GenerationRequest request;
    request.prompt_tokens = MakePrompt(20, engine.config().vocab_size, i);
    request.sampling.max_tokens = 50;
    auto stream = engine.loop().Submit(std::move(request));
    if (stream.ok()) {
      accepted++;
      streams.push_back(*stream);
    } else {
      EXPECT_EQ(stream.status().code(), StatusCode::kResourceExhausted);
      rejected++;
    }
  }
  EXPECT_GE(accepted, 2);
  EXPECT_GE(rejected, 1);
  for (auto& stream : streams) stream->Cancel();
}

TEST(EngineLoopTest, StopDrainsInFlightThenRefusesNewWork) {
  EngineFixture engine;
  GenerationRequest request = GreedyRequest(MakePrompt(10, engine.config().vocab_size, 4), 20);
  auto stream = engine.loop().Submit(request);
  ASSERT_TRUE(stream.ok());
  engine.loop().Stop(std::chrono::seconds(30));
  const Outcome outcome = EngineFixture::Collect(**stream);
  EXPECT_EQ(outcome.finish, FinishReason::kLength);
  EXPECT_EQ(outcome.tokens.size(), 20u);
  EXPECT_EQ(engine.loop().Submit(request).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace specontext::testing

// Sampling from a logits summary against sampling from the whole row: on random rows and every
// kind of parameter, a draw the summary settles is the whole row's draw, and the summaries settle
// almost all of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/sampler/logits_summary.h"
#include "engine/sampler/sampler.h"

namespace specontext {
namespace {

constexpr int32_t kEos = 2;
constexpr int kVocab = 6000;

// A language model's row: a broad noise floor, a few strong candidates, values rounded to bf16
// precision so ties occur as they do on the GPU.
std::vector<float> ModelLikeRow(std::mt19937& rng) {
  std::normal_distribution<float> floor(0.0f, 2.0f);
  std::vector<float> row(kVocab);
  for (float& l : row) l = floor(rng);
  std::uniform_int_distribution<int> pick(0, kVocab - 1);
  std::uniform_real_distribution<float> spike(6.0f, 14.0f);
  for (int i = 0; i < 8; ++i) row[pick(rng)] = spike(rng);
  row[kEos] = spike(rng);
  for (float& l : row) {
    uint32_t bits;
    std::memcpy(&bits, &l, 4);
    bits &= 0xffff0000u;
    std::memcpy(&l, &bits, 4);
  }
  return row;
}

SamplingParams Params(int kind, std::mt19937& rng) {
  SamplingParams p;
  p.max_tokens = 1000;
  const float temperatures[] = {0.0f, 0.7f, 1.0f, 1.6f};
  p.temperature = temperatures[kind % 4];
  switch ((kind / 4) % 6) {
    case 1:
      p.top_k = std::uniform_int_distribution<int>(1, 60)(rng);
      break;
    case 2:
      p.top_p = 0.9f;
      break;
    case 3:
      p.min_p = 0.05f;
      break;
    case 4:
      p.top_k = 40, p.top_p = 0.5f, p.min_p = 0.1f;
      break;
    case 5:
      p.top_k = 3000;
      break;  // deeper than any summary: settled only by luck
    default:
      break;
  }
  switch ((kind / 24) % 4) {
    case 1:
      p.repetition_penalty = 1.3f;
      break;
    case 2:
      p.presence_penalty = -1.0f, p.frequency_penalty = 0.7f;
      break;
    case 3:
      p.min_tokens = 50;
      break;
    default:
      break;
  }
  if (kind % 3 == 0) p.logprobs = true, p.top_logprobs = 5;
  return p;
}

TEST(LogitsSummaryTest, SettledDrawsEqualWholeRowDraws) {
  std::mt19937 rng(11);
  Sampler sampler({kEos});
  int settled = 0, total = 0, settled_plain = 0, plain = 0;
  for (int trial = 0; trial < 1920; ++trial) {
    const std::vector<float> row = ModelLikeRow(rng);
    const SamplingParams params = Params(trial % 96, rng);
    std::vector<int32_t> prompt(300), generated(trial % 40);
    std::uniform_int_distribution<int32_t> token(0, kVocab - 1);
    for (int32_t& t : prompt) t = token(rng);
    for (int32_t& t : generated) t = token(rng);
    // Make the penalties bite: some generated tokens are the row's favourites.
    if (!generated.empty())
      generated[0] = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    const SequenceHistory history{prompt, generated, static_cast<uint64_t>(trial)};

    auto whole = sampler.Sample(row, params, history);
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    auto plan = sampler.PlanSummary(params, history, kVocab);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    const LogitsSummary summary =
        SummarizeLogits(row, plan->temperature, plan->gather_tokens(), plan->top_k);
    auto got = sampler.SampleSummary(summary, *plan, params, history, kVocab);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    // A hot temperature flattens this row's noise floor into a nucleus wider than a summary.
    const bool is_plain = params.top_k != 3000 && params.temperature <= 1.0f;
    total += 1, plain += is_plain;
    if (!got->has_value()) continue;
    settled += 1, settled_plain += is_plain;
    const SampleResult& s = **got;
    ASSERT_EQ(s.token, whole->token) << "trial " << trial;
    EXPECT_EQ(s.finish, whole->finish);
    if (params.logprobs) {
      EXPECT_NEAR(s.logprob, whole->logprob, 1e-4) << "trial " << trial;
      ASSERT_EQ(s.top_logprobs.size(), whole->top_logprobs.size());
      for (size_t i = 0; i < s.top_logprobs.size(); ++i) {
        EXPECT_EQ(s.top_logprobs[i].token, whole->top_logprobs[i].token);
        EXPECT_NEAR(s.top_logprobs[i].logprob, whole->top_logprobs[i].logprob, 1e-4);
      }
    }
  }
  // Summaries of 1024 tokens settle draws whose reach stays inside them: everything but top-k
  // deeper than the summary and nuclei of thousands of tokens.
  EXPECT_GE(settled_plain, plain * 99 / 100) << settled_plain << " of " << plain;
  EXPECT_GT(settled, total / 2);
}

TEST(LogitsSummaryTest, GreedyPassesOverAPenalisedFavourite) {
  std::vector<float> row(kVocab, 0.0f);
  row[10] = 5.0f, row[20] = 4.0f;
  SamplingParams params;
  params.temperature = 0.0f;
  params.presence_penalty = 2.0f;
  const std::vector<int32_t> generated = {10};
  const SequenceHistory history{{}, generated, 0};
  Sampler sampler({kEos});
  auto plan = sampler.PlanSummary(params, history, kVocab);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->gather_tokens(), std::vector<int32_t>{10});
  const LogitsSummary summary =
      SummarizeLogits(row, plan->temperature, plan->gather_tokens(), plan->top_k);
  auto got = sampler.SampleSummary(summary, *plan, params, history, kVocab);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->token, 20);
}

TEST(LogitsSummaryTest, UnsettledAndMalformedSummaries) {
  Sampler sampler({kEos});
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 100.0f;  // every summarised token falls below the unseen ones
  std::vector<float> row(kVocab);
  for (int i = 0; i < kVocab; ++i) row[i] = 1.0f + 1e-3f * static_cast<float>(i);
  std::vector<int32_t> prompt;
  for (int i = kVocab - 64; i < kVocab; ++i) prompt.push_back(i);
  const SequenceHistory history{prompt, {}, 0};
  auto plan = sampler.PlanSummary(params, history, kVocab);
  ASSERT_TRUE(plan.ok());
  LogitsSummary summary =
      SummarizeLogits(row, plan->temperature, plan->gather_tokens(), plan->top_k);
  auto got = sampler.SampleSummary(summary, *plan, params, history, kVocab);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());

  // A NaN anywhere: the whole row reports it.
  row[7] = NAN;
  summary = SummarizeLogits(row, plan->temperature, plan->gather_tokens(), plan->top_k);
  got = sampler.SampleSummary(summary, *plan, params, history, kVocab);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());

  summary.gathered.pop_back();
  EXPECT_FALSE(sampler.SampleSummary(summary, *plan, params, history, kVocab).ok());
  params.top_p = 2.0f;
  EXPECT_FALSE(sampler.PlanSummary(params, history, kVocab).ok());
}

}  // namespace
}  // namespace specontext

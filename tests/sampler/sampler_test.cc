// The sampler: exact results on hand-made logits, distributions by counting seeded draws, and
// every malformed input as an error value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/sampler/sampler.h"
#include "engine/sampler/truncation.h"

namespace specontext {
namespace {

constexpr int32_t kEos = 3;

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 100;
  return p;
}

SamplingParams Random() {
  SamplingParams p;
  p.max_tokens = 100;
  return p;
}

Result<SampleResult> SampleOnce(const std::vector<float>& logits, const SamplingParams& params,
                                const std::vector<int32_t>& prompt = {},
                                const std::vector<int32_t>& generated = {}, uint64_t seed = 0) {
  Sampler sampler({kEos});
  return sampler.Sample(logits, params, {prompt, generated, seed});
}

int32_t TokenOf(const std::vector<float>& logits, const SamplingParams& params,
                const std::vector<int32_t>& prompt = {}, const std::vector<int32_t>& generated = {},
                uint64_t seed = 0) {
  auto r = SampleOnce(logits, params, prompt, generated, seed);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->token : -1;
}

// The tokens that survive truncation of a whole row, in order, renormalised to sum to 1.
std::vector<Candidate> TruncatedDistribution(std::span<const float> scaled_logits,
                                             const SamplingParams& params) {
  RowOrder order(scaled_logits);
  const Truncation kept = *Truncate(order, params);
  order.Extend(kept.count);
  std::vector<Candidate> out;
  for (size_t i = 0; i < kept.count; ++i)
    out.push_back({order[i].token, order[i].prob / kept.mass});
  return out;
}

// Frequencies of each token over `draws` requests with seeds 0..draws-1.
std::vector<double> Frequencies(const std::vector<float>& logits, const SamplingParams& params,
                                int draws = 20000) {
  std::vector<double> freq(logits.size(), 0.0);
  for (int s = 0; s < draws; ++s) freq[TokenOf(logits, params, {}, {}, s)] += 1.0;
  for (double& f : freq) f /= draws;
  return freq;
}

TEST(SamplerTest, GreedyPicksArgmaxAndReportsRawLogprob) {
  SamplingParams p = Greedy();
  p.logprobs = true;
  auto r = SampleOnce({1.0f, 3.0f, 2.0f, 0.0f}, p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, 1);
  const double log_z = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(0.0));
  EXPECT_NEAR(r->logprob, 3.0 - log_z, 1e-6);
  EXPECT_EQ(r->finish, FinishReason::kNone);
  // Without logprobs asked for, none is computed.
  r = SampleOnce({1.0f, 3.0f, 2.0f, 0.0f}, Greedy());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, 1);
  EXPECT_EQ(r->logprob, 0.0f);
}

TEST(SamplerTest, GreedyTieGoesToLowestId) {
  EXPECT_EQ(TokenOf({0.0f, 2.0f, 2.0f, 1.0f}, Greedy()), 1);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 2.0f;
  // 2.0 → 1.0 falls below 1.9.
  EXPECT_EQ(TokenOf({2.0f, -1.0f, 1.9f, -5.0f}, p, {0}), 2);
  // -0.5 → -1.0 falls below -0.6; a generated token counts like a prompt token.
  EXPECT_EQ(TokenOf({-0.5f, -0.6f, -9.0f, -9.0f}, p, {}, {0}), 1);
  // Repeats count once: 2.0 / 2 = 1.0 still beats 0.9.
  EXPECT_EQ(TokenOf({2.0f, 0.9f, -9.0f, -9.0f}, p, {0, 0, 0}, {0}), 0);
}

TEST(SamplerTest, FrequencyAndPresencePenaltiesCountGeneratedTokensOnly) {
  const std::vector<float> logits = {1.0f, 0.9f, 0.0f, -9.0f};
  SamplingParams p = Greedy();
  p.frequency_penalty = 0.1f;  // two occurrences: 1.0 - 0.2 = 0.8 < 0.9
  EXPECT_EQ(TokenOf(logits, p, {}, {0, 0}), 1);
  p.frequency_penalty = 0.04f;  // 1.0 - 0.08 = 0.92 > 0.9
  EXPECT_EQ(TokenOf(logits, p, {}, {0, 0}), 0);
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.15f;  // once, however many times: 0.85 < 0.9
  EXPECT_EQ(TokenOf(logits, p, {}, {0, 0, 0}), 1);
  EXPECT_EQ(TokenOf(logits, p, {0, 0}, {}), 0);  // prompt tokens are not penalised
}

TEST(SamplerTest, TruncationKeepsTheDocumentedSets) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams p = Random();
  p.top_p = 0.5f;  // token 0 alone reaches the mass
  auto c = TruncatedDistribution(logits, p);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].token, 0);
  EXPECT_DOUBLE_EQ(c[0].prob, 1.0);

  p.top_p = 0.6f;
  c = TruncatedDistribution(logits, p);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].prob, 0.625, 1e-6);
  EXPECT_NEAR(c[1].prob, 0.375, 1e-6);

  p = Random();
  p.min_p = 0.5f;  // threshold 0.25 drops 0.2
  c = TruncatedDistribution(logits, p);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].prob + c[1].prob, 1.0, 1e-9);

  p = Random();
  p.top_k = 2;
  p.top_p = 0.6f;  // top-p on the renormalised top-2 (0.625, 0.375) keeps only token 0
  c = TruncatedDistribution(logits, p);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].token, 0);
}

TEST(SamplerTest, TemperatureShapesTheSampledDistribution) {
  const std::vector<float> logits = {0.0f, std::log(3.0f)};
  SamplingParams p = Random();
  // Tolerances are ~5 standard deviations of a 20000-draw frequency.
  EXPECT_NEAR(Frequencies(logits, p)[1], 0.75, 0.016);
  p.temperature = 2.0f;  // p ∝ exp(l / 2): 1 : √3
  EXPECT_NEAR(Frequencies(logits, p)[1], std::sqrt(3.0) / (1.0 + std::sqrt(3.0)), 0.018);
}

TEST(SamplerTest, TopPMassIsRespectedWhenSampling) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams p = Random();
  p.top_p = 0.6f;
  const auto freq = Frequencies(logits, p);
  EXPECT_NEAR(freq[0], 0.625, 0.018);
  EXPECT_NEAR(freq[1], 0.375, 0.018);
  EXPECT_EQ(freq[2], 0.0);
}

TEST(SamplerTest, TopKAboveVocabularyMeansNoTopK) {
  const std::vector<float> logits = {0.0f, std::log(3.0f)};
  SamplingParams p = Random();
  p.top_k = 1000;
  EXPECT_NEAR(Frequencies(logits, p)[1], 0.75, 0.016);
  p.top_k = 1;
  EXPECT_EQ(Frequencies(logits, p, 500)[1], 1.0);
}

TEST(SamplerTest, SeedIsReproducibleAndIndependentOfOtherRequests) {
  std::vector<float> logits(64);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = 0.1f * static_cast<float>(i % 7);
  SamplingParams p = Random();
  std::vector<int32_t> first, again, other;
  for (int step = 0; step < 32; ++step) {
    first.push_back(TokenOf(logits, p, {}, first, 42));
  }
  for (int step = 0; step < 32; ++step) {
    // Interleave another request's draws: they must not perturb this one.
    other.push_back(TokenOf(logits, p, {}, other, 7));
    again.push_back(TokenOf(logits, p, {}, again, 42));
  }
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
}

TEST(SamplerTest, MinTokensMasksEosAndStopIdsUntilReached) {
  const std::vector<float> logits = {0.0f, 1.0f, 4.0f, 5.0f};  // EOS (3) is the argmax
  SamplingParams p = Greedy();
  p.min_tokens = 2;
  p.stop_token_ids = {2};
  p.logprobs = true;
  EXPECT_EQ(TokenOf(logits, p, {}, {0}), 1);
  auto r = SampleOnce(logits, p, {}, {0, 0});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, kEos);
  EXPECT_EQ(r->finish, FinishReason::kStop);
  // The logprob still describes the raw model, mask or not.
  r = SampleOnce(logits, p, {}, {0});
  ASSERT_TRUE(r.ok());
  const double log_z = std::log(1.0 + std::exp(1.0) + std::exp(4.0) + std::exp(5.0));
  EXPECT_NEAR(r->logprob, 1.0 - log_z, 1e-6);
}

TEST(SamplerTest, StopIdsAndIgnoreEosDecideTheFinishReason) {
  SamplingParams p = Greedy();
  p.stop_token_ids = {1};
  auto r = SampleOnce({0.0f, 9.0f, 0.0f, 0.0f}, p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kStop);

  p.ignore_eos = true;
  p.min_tokens = 5;  // with ignore_eos, EOS is an ordinary token and is not masked
  r = SampleOnce({0.0f, 0.0f, 0.0f, 9.0f}, p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, kEos);
  EXPECT_EQ(r->finish, FinishReason::kNone);

  p = Greedy();
  p.max_tokens = 3;
  r = SampleOnce({0.0f, 9.0f, 0.0f, 0.0f}, p, {}, {1, 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kLength);
}

TEST(SamplerTest, TopLogprobsAreRawSortedAndClipped) {
  SamplingParams p = Random();
  p.temperature = 0.5f;
  p.repetition_penalty = 3.0f;
  p.logprobs = true;
  p.top_logprobs = 10;
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  auto r = SampleOnce(logits, p, {1});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->top_logprobs.size(), 4u);
  const double log_z = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(-1.0));
  const int32_t order[] = {1, 2, 0, 3};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r->top_logprobs[i].token, order[i]);
    EXPECT_NEAR(r->top_logprobs[i].logprob, logits[order[i]] - log_z, 1e-6);
  }
  EXPECT_NEAR(r->logprob, logits[r->token] - log_z, 1e-6);
  p.logprobs = false;
  r = SampleOnce(logits, p);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->top_logprobs.empty());
}

TEST(SamplerTest, MalformedInputsAreErrors) {
  EXPECT_FALSE(SampleOnce({-INFINITY, -INFINITY}, Random()).ok());
  EXPECT_FALSE(SampleOnce({0.0f, NAN, 1.0f}, Greedy()).ok());
  EXPECT_FALSE(SampleOnce({0.0f, INFINITY}, Greedy()).ok());
  EXPECT_FALSE(SampleOnce({}, Greedy()).ok());
  EXPECT_FALSE(SampleOnce({0.0f, 1.0f}, Greedy(), {5}).ok());
  EXPECT_FALSE(SampleOnce({0.0f, 1.0f}, Greedy(), {}, {-1}).ok());
  // Only EOS is possible but min_tokens forbids it.
  SamplingParams p = Greedy();
  p.min_tokens = 1;
  const auto masked = SampleOnce({-INFINITY, -INFINITY, -INFINITY, 0.0f}, p);
  ASSERT_FALSE(masked.ok());
  EXPECT_EQ(masked.status().code(), StatusCode::kFailedPrecondition);
  p = Random();
  p.top_p = 0.0f;
  EXPECT_FALSE(SampleOnce({0.0f, 1.0f}, p).ok());
  p = Random();
  p.temperature = NAN;
  EXPECT_FALSE(SampleOnce({0.0f, 1.0f}, p).ok());
}

TEST(SamplerTest, TopPNucleusBeyondTheFirstSortedPrefixMatchesAFullSort) {
  // 3000 near-flat logits with ties: the nucleus spans thousands of tokens, so the sorted prefix
  // must grow several times, and ties must still go to the lower id.
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> level(0, 400);
  std::vector<float> logits(3000);
  for (float& l : logits) l = 0.01f * static_cast<float>(level(rng));
  for (float top_p : {0.3f, 0.9f, 0.999f}) {
    SamplingParams p;
    p.top_p = top_p;
    const std::vector<Candidate> got = TruncatedDistribution(logits, p);

    std::vector<int32_t> order(logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    });
    const float max_logit = logits[order[0]];
    double total = 0.0;
    for (float l : logits) total += std::exp(static_cast<double>(l) - max_logit);
    size_t keep = 0;
    double mass = 0.0;
    while (keep < order.size() && mass < top_p) {
      mass += std::exp(static_cast<double>(logits[order[keep++]]) - max_logit) / total;
    }
    ASSERT_GT(keep, 64u) << top_p;
    ASSERT_EQ(got.size(), keep) << top_p;
    for (size_t i = 0; i < keep; ++i) {
      ASSERT_EQ(got[i].token, order[i]) << top_p << " rank " << i;
      const double want =
          std::exp(static_cast<double>(logits[order[i]]) - max_logit) / total / mass;
      ASSERT_NEAR(got[i].prob, want, 1e-9) << top_p << " rank " << i;
    }
  }
}

}  // namespace
}  // namespace specontext

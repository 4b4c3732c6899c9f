// SpeContext decode steps on the CPU backend: a step that lists positions per KV head must equal
// a dense forward pass that masks every other position, listing every position must equal the
// dense step bit for bit, and malformed lists are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu/cpu_model_runner.h"
#include "engine/model/model.h"
#include "tests/cpu/dense_reference.h"
#include "tests/cpu/paged_kv.h"

namespace specontext {
namespace {

using testing::PagedKv;
using PositionLists = std::vector<std::vector<int32_t>>;

constexpr int kMaxTokens = 64;

std::vector<int32_t> RandomTokens(int count, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> tokens(count);
  for (int32_t& t : tokens) t = dist(rng);
  return tokens;
}

// A different random subset per KV head, always ending with the decode token's own position.
PositionLists RandomSelection(int kv_heads, int position, int keep, uint32_t seed) {
  std::mt19937 rng(seed);
  PositionLists lists(kv_heads);
  for (auto& list : lists) {
    std::vector<int32_t> earlier(position);
    std::iota(earlier.begin(), earlier.end(), 0);
    std::shuffle(earlier.begin(), earlier.end(), rng);
    list.assign(earlier.begin(), earlier.begin() + std::min(keep, position));
    std::sort(list.begin(), list.end());
    list.push_back(position);
  }
  return lists;
}

class SparseDecodeTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto model = LoadModel(std::string("preset:") + GetParam());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    auto runner = cpu::CpuModelRunner::Create(*model_, {.block_tokens = 8});
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    runner_ = std::move(runner).value();
    vocab_ = model_->config.vocab_size;
    kv_heads_ = model_->config.num_kv_heads;
  }

  // Prefills all but the last token densely, then decodes the last one with `sparse`.
  std::vector<float> Decode(const std::vector<int32_t>& tokens, PositionLists sparse,
                            uint32_t kv_seed, int dense_layers = 0) {
    PagedKv kv(runner_->kv_layout(), kMaxTokens, kv_seed);
    const int last = static_cast<int>(tokens.size()) - 1;
    BatchStep prefill;
    prefill.sequences.push_back(
        {.tokens = {tokens.begin(), tokens.end() - 1}, .block_table = kv.table()});
    StepOutput out;
    EXPECT_TRUE(runner_->Step(prefill, &out).ok());
    BatchStep decode;
    decode.sequences.push_back({.tokens = {tokens.back()},
                                .start_position = last,
                                .block_table = kv.table(),
                                .sparse_positions = std::move(sparse)});
    decode.dense_layers = dense_layers;
    const Status st = runner_->Step(decode, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out.logits;
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<cpu::CpuModelRunner> runner_;
  int vocab_ = 0;
  int kv_heads_ = 0;
};

TEST_P(SparseDecodeTest, EveryPositionListedEqualsDenseExactly) {
  const auto tokens = RandomTokens(29, vocab_, 1);
  const int last = static_cast<int>(tokens.size()) - 1;
  PositionLists all(kv_heads_, std::vector<int32_t>(last + 1));
  for (auto& list : all) std::iota(list.begin(), list.end(), 0);
  const auto dense = Decode(tokens, {}, 2);
  const auto sparse = Decode(tokens, all, 3);
  ASSERT_EQ(dense.size(), static_cast<size_t>(vocab_));
  EXPECT_EQ(sparse, dense);
}

TEST_P(SparseDecodeTest, MatchesDenseReferenceMaskedToTheSamePositions) {
  const auto tokens = RandomTokens(33, vocab_, 4);
  const int last = static_cast<int>(tokens.size()) - 1;
  for (int keep : {0, 5, 17}) {
    const PositionLists lists = RandomSelection(kv_heads_, last, keep, 10 + keep);
    const auto got = Decode(tokens, lists, 20 + keep);
    const auto reference = testing::MaskedReferenceLogits(*model_, tokens, lists);
    const std::vector<double> want(reference.end() - vocab_, reference.end());
    double max_ref = 0.0;
    for (double v : want) max_ref = std::max(max_ref, std::abs(v));
    ASSERT_GT(max_ref, 1e-3);
    for (int i = 0; i < vocab_; ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-5 * max_ref + 1e-6) << "keep " << keep << " logit " << i;
    }
    // Dropping positions must change the output, or the comparison proves nothing.
    const auto dense = testing::DenseReferenceLogits(*model_, tokens);
    double diff = 0.0;
    for (int i = 0; i < vocab_; ++i) {
      diff = std::max(diff, std::abs(dense[dense.size() - vocab_ + i] - want[i]));
    }
    EXPECT_GT(diff, 1e-4) << "keep " << keep;
  }
}

// Layers below dense_layers attend to every position, the rest to the lists: the reference
// masks only the later layers. All layers dense is the dense step exactly.
TEST_P(SparseDecodeTest, DenseFirstLayersMatchTheReferenceMaskedAfterThem) {
  const auto tokens = RandomTokens(31, vocab_, 12);
  const int last = static_cast<int>(tokens.size()) - 1;
  const PositionLists lists = RandomSelection(kv_heads_, last, 6, 13);
  const int layers = model_->config.num_layers;
  ASSERT_GE(layers, 2);
  std::vector<double> previous;
  for (int dense_layers = 0; dense_layers < layers; ++dense_layers) {
    const auto got = Decode(tokens, lists, 30 + dense_layers, dense_layers);
    const auto reference = testing::MaskedReferenceLogits(*model_, tokens, lists, dense_layers);
    const std::vector<double> want(reference.end() - vocab_, reference.end());
    double max_ref = 0.0;
    for (double v : want) max_ref = std::max(max_ref, std::abs(v));
    for (int i = 0; i < vocab_; ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-5 * max_ref + 1e-6)
          << "dense layers " << dense_layers << " logit " << i;
    }
    // Each choice of layers must give another output, or the comparison proves nothing.
    if (!previous.empty()) {
      double diff = 0.0;
      for (int i = 0; i < vocab_; ++i) diff = std::max(diff, std::abs(previous[i] - want[i]));
      EXPECT_GT(diff, 1e-4);
    }
    previous = want;
  }
  EXPECT_EQ(Decode(tokens, lists, 40, layers), Decode(tokens, {}, 41));
  EXPECT_EQ(Decode(tokens, lists, 42, layers + 5), Decode(tokens, {}, 43));
}

TEST_P(SparseDecodeTest, SparseAndDenseRowsShareABatch) {
  const auto a = RandomTokens(20, vocab_, 5);
  const auto b = RandomTokens(26, vocab_, 6);
  const PositionLists lists = RandomSelection(kv_heads_, 25, 9, 7);
  PagedKv kv_a(runner_->kv_layout(), kMaxTokens, 8), kv_b(runner_->kv_layout(), kMaxTokens, 9);
  BatchStep prefill;
  prefill.sequences.push_back({.tokens = {a.begin(), a.end() - 1}, .block_table = kv_a.table()});
  prefill.sequences.push_back({.tokens = {b.begin(), b.end() - 1}, .block_table = kv_b.table()});
  StepOutput out;
  ASSERT_TRUE(runner_->Step(prefill, &out).ok());
  BatchStep decode;
  decode.sequences.push_back(
      {.tokens = {a.back()}, .start_position = 19, .block_table = kv_a.table()});
  decode.sequences.push_back({.tokens = {b.back()},
                              .start_position = 25,
                              .block_table = kv_b.table(),
                              .sparse_positions = lists});
  ASSERT_TRUE(runner_->Step(decode, &out).ok());
  const auto dense_a = Decode(a, {}, 10);
  const auto sparse_b = Decode(b, lists, 11);
  ASSERT_EQ(out.logits.size(), 2 * static_cast<size_t>(vocab_));
  for (int i = 0; i < vocab_; ++i) {
    ASSERT_NEAR(out.logits[i], dense_a[i], 1e-5) << i;
    ASSERT_NEAR(out.logits[vocab_ + i], sparse_b[i], 1e-5) << i;
  }
}

TEST_P(SparseDecodeTest, MalformedListsAreErrors) {
  PagedKv kv(runner_->kv_layout(), kMaxTokens, 12);
  const auto tokens = RandomTokens(10, vocab_, 13);
  StepOutput out;
  BatchStep prefill;
  prefill.sequences.push_back({.tokens = tokens, .block_table = kv.table()});
  ASSERT_TRUE(runner_->Step(prefill, &out).ok());
  const auto decode_with = [&](PositionLists lists, int tokens_now = 1) {
    BatchStep step;
    step.sequences.push_back({.tokens = std::vector<int32_t>(tokens_now, 1),
                              .start_position = 10,
                              .block_table = kv.table(),
                              .sparse_positions = std::move(lists)});
    return runner_->Step(step, &out);
  };
  const PositionLists good(kv_heads_, {0, 4, 10});
  EXPECT_TRUE(decode_with(good).ok());
  EXPECT_EQ(decode_with(good, 2).code(), StatusCode::kInvalidArgument);  // not a decode step
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_ + 1, {0, 10})).ok());
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_, std::vector<int32_t>{})).ok());
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_, {0, 4})).ok());         // own position missing
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_, {4, 0, 10})).ok());     // not ascending
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_, {0, 4, 4, 10})).ok());  // repeated
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_, {-1, 10})).ok());
  EXPECT_FALSE(decode_with(PositionLists(kv_heads_, {0, 10, 11})).ok());  // not yet written
  PositionLists one_bad = good;
  one_bad.back() = {3, 2, 10};
  const Status st = decode_with(one_bad);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("KV head " + std::to_string(kv_heads_ - 1)), std::string::npos)
      << st.ToString();
  BatchStep negative;
  negative.sequences.push_back(
      {.tokens = {1}, .start_position = 10, .block_table = kv.table(), .sparse_positions = good});
  negative.dense_layers = -1;
  EXPECT_EQ(runner_->Step(negative, &out).code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Presets, SparseDecodeTest,
                         ::testing::Values("tiny-llama", "tiny-qwen3", "tiny-mistral"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(SparseDecodeWindowTest, PositionsBeforeTheSlidingWindowAreErrors) {
  auto model = LoadModel("preset:tiny-llama");
  ASSERT_TRUE(model.ok());
  (*model)->config.sliding_window = 4;
  auto runner = cpu::CpuModelRunner::Create(**model, {.block_tokens = 8});
  ASSERT_TRUE(runner.ok());
  PagedKv kv((*runner)->kv_layout(), kMaxTokens, 14);
  StepOutput out;
  BatchStep step;
  step.sequences.push_back(
      {.tokens = RandomTokens(9, (*model)->config.vocab_size, 15), .block_table = kv.table()});
  ASSERT_TRUE((*runner)->Step(step, &out).ok());
  const int kv_heads = (*model)->config.num_kv_heads;
  const auto decode_with = [&](std::vector<int32_t> list) {
    step.sequences[0].tokens = {1};
    step.sequences[0].start_position = 9;
    step.sequences[0].sparse_positions = PositionLists(kv_heads, std::move(list));
    return (*runner)->Step(step, &out);
  };
  // Position 9 sees 6..9 through a window of 4.
  EXPECT_FALSE(decode_with({5, 9}).ok());
  EXPECT_TRUE(decode_with({6, 9}).ok());
}

}  // namespace
}  // namespace specontext

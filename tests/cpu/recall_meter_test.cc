// The recall meter on hand-made samples (exact sums, per layer and head, percentiles), and as
// the CPU runner's probe: only sparse decode rows are shown, once per layer, and listing every
// position captures all of the mass.
#include "engine/specontext/recall_meter.h"

#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu/cpu_model_runner.h"
#include "engine/model/model.h"
#include "tests/cpu/paged_kv.h"

namespace specontext {
namespace {

using PositionLists = std::vector<std::vector<int32_t>>;

// Two query heads sharing one KV head over positions 0..3.
SparseAttentionSample Sample(int layer, const std::vector<float>& weights,
                             const PositionLists& attended) {
  return {.layer = layer,
          .position = 3,
          .num_heads = 2,
          .num_kv_heads = 1,
          .dense_weights = weights,
          .attended = attended};
}

TEST(RecallMeterTest, SumsSelectedMassPerLayerAndHead) {
  RecallMeter meter;
  const std::vector<float> weights = {0.1f, 0.2f, 0.3f, 0.4f,   // head 0
                                      0.5f, 0.0f, 0.0f, 0.5f};  // head 1
  const PositionLists selected = {{0, 3}};
  meter.Observe(Sample(0, weights, selected));
  meter.Observe(Sample(1, weights, {{1, 2, 3}}));
  const RecallSummary s = meter.Summarize();
  EXPECT_EQ(s.samples, 4);
  EXPECT_EQ(s.malformed, 0);
  ASSERT_EQ(s.per_layer_head.size(), 2u);
  EXPECT_NEAR(s.per_layer_head[0][0], 0.5, 1e-6);
  EXPECT_NEAR(s.per_layer_head[0][1], 1.0, 1e-6);
  EXPECT_NEAR(s.per_layer_head[1][0], 0.9, 1e-6);
  EXPECT_NEAR(s.per_layer_head[1][1], 0.5, 1e-6);
  EXPECT_NEAR(s.per_layer[0], 0.75, 1e-6);
  EXPECT_NEAR(s.per_layer[1], 0.7, 1e-6);
  EXPECT_NEAR(s.mean, 0.725, 1e-6);
  EXPECT_NEAR(s.min, 0.5, 1e-6);
  EXPECT_NEAR(s.max, 1.0, 1e-6);
  EXPECT_NEAR(s.p1, 0.5, 1e-3);
  EXPECT_NEAR(s.p50, 0.5, 1e-3);  // two of four samples are 0.5
}

TEST(RecallMeterTest, ADenseLayerKeepsAllItsMass) {
  RecallMeter meter;
  const std::vector<float> weights = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.0f, 0.0f, 0.5f};
  SparseAttentionSample dense = Sample(0, weights, {{3}});
  dense.dense_layer = true;
  meter.Observe(dense);
  meter.Observe(Sample(1, weights, {{3}}));
  const RecallSummary s = meter.Summarize();
  ASSERT_EQ(s.per_layer.size(), 2u);
  EXPECT_NEAR(s.per_layer[0], 1.0, 1e-6);
  EXPECT_NEAR(s.per_layer[1], 0.45, 1e-6);
}

TEST(RecallMeterTest, PercentilesFollowTheDistribution) {
  RecallMeter meter;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> mass(0.0f, 1.0f);
  std::vector<float> all;
  for (int i = 0; i < 500; ++i) {
    const float m = mass(rng);
    all.push_back(m);
    all.push_back(m);  // both heads of the sample carry m on position 0
    const std::vector<float> weights = {m, 1.0f - m, 0.0f, 0.0f, m, 0.0f, 1.0f - m, 0.0f};
    meter.Observe(Sample(0, weights, {{0, 3}}));
  }
  std::sort(all.begin(), all.end());
  const RecallSummary s = meter.Summarize();
  EXPECT_EQ(s.samples, 1000);
  EXPECT_NEAR(s.min, all.front(), 1e-6);
  EXPECT_NEAR(s.p1, all[9], 1.5e-3);
  EXPECT_NEAR(s.p5, all[49], 1.5e-3);
  EXPECT_NEAR(s.p50, all[499], 1.5e-3);
  EXPECT_LE(s.p1, all[9] + 1e-6);  // a lower edge, never above the exact value
  meter.Reset();
  EXPECT_EQ(meter.Summarize().samples, 0);
}

TEST(RecallMeterTest, MalformedSamplesAreCountedNotUsed) {
  RecallMeter meter;
  const std::vector<float> short_weights = {0.5f, 0.5f};
  meter.Observe(Sample(0, short_weights, {{0, 3}}));
  const std::vector<float> weights(8, 0.25f);
  meter.Observe(Sample(0, weights, {{0}, {3}}));        // two lists, one KV head
  meter.Observe(Sample(0, weights, {{-5, 0, 3, 99}}));  // out-of-range entries skipped
  const RecallSummary s = meter.Summarize();
  EXPECT_EQ(s.malformed, 2);
  EXPECT_EQ(s.samples, 2);
  EXPECT_NEAR(s.mean, 0.5, 1e-6);
}

// Records how often the runner shows it something, and the shapes it shows.
class CountingProbe : public AttentionProbe {
 public:
  void Observe(const SparseAttentionSample& sample) override {
    layers.push_back(sample.layer);
    sequences.push_back(sample.sequence);
    for (int head = 0; head < sample.num_heads; ++head) {
      const auto row =
          sample.dense_weights.subspan(head * (sample.position + 1), sample.position + 1);
      sums.push_back(std::accumulate(row.begin(), row.end(), 0.0));
    }
  }
  std::vector<int> layers, sequences;
  std::vector<double> sums;
};

class RunnerProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = LoadModel("preset:tiny-qwen2");
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
  }

  // Prefills 23 tokens into two sequences, then decodes sequence 0 densely and sequence 1 with
  // `lists`.
  StepOutput Run(AttentionProbe* probe, const PositionLists& lists, int dense_layers = 0) {
    auto runner = cpu::CpuModelRunner::Create(*model_, {.block_tokens = 8, .probe = probe});
    EXPECT_TRUE(runner.ok());
    std::vector<testing::PagedKv> kvs;
    for (uint32_t seed : {1u, 2u}) kvs.emplace_back((*runner)->kv_layout(), 32, seed);
    std::vector<int32_t> prompt(23);
    std::iota(prompt.begin(), prompt.end(), 3);
    BatchStep prefill;
    for (auto& kv : kvs) prefill.sequences.push_back({.tokens = prompt, .block_table = kv.table()});
    StepOutput out;
    EXPECT_TRUE((*runner)->Step(prefill, &out).ok());
    BatchStep decode;
    for (auto& kv : kvs) {
      decode.sequences.push_back({.tokens = {7}, .start_position = 23, .block_table = kv.table()});
    }
    decode.sequences[1].sparse_positions = lists;
    decode.dense_layers = dense_layers;
    EXPECT_TRUE((*runner)->Step(decode, &out).ok());
    return out;
  }

  PositionLists Every() const {
    PositionLists lists(model_->config.num_kv_heads, std::vector<int32_t>(24));
    for (auto& list : lists) std::iota(list.begin(), list.end(), 0);
    return lists;
  }

  std::unique_ptr<Model> model_;
};

TEST_F(RunnerProbeTest, SeesEachSparseRowOncePerLayer) {
  CountingProbe probe;
  const StepOutput probed = Run(&probe, Every());
  const int layers = model_->config.num_layers;
  ASSERT_EQ(probe.layers.size(), static_cast<size_t>(layers));
  for (int layer = 0; layer < layers; ++layer) {
    EXPECT_EQ(probe.layers[layer], layer);
    EXPECT_EQ(probe.sequences[layer], 1);  // the dense row is never shown
  }
  ASSERT_EQ(probe.sums.size(), static_cast<size_t>(layers * model_->config.num_heads));
  for (double sum : probe.sums) EXPECT_NEAR(sum, 1.0, 1e-5);
  // Measuring must not change what the step computes.
  EXPECT_EQ(Run(nullptr, Every()).logits, probed.logits);
}

TEST_F(RunnerProbeTest, MeterReportsFullAndPartialSelections) {
  RecallMeter full;
  Run(&full, Every());
  RecallSummary s = full.Summarize();
  EXPECT_EQ(s.samples, model_->config.num_layers * model_->config.num_heads);
  EXPECT_NEAR(s.mean, 1.0, 1e-5);
  EXPECT_NEAR(s.min, 1.0, 1e-5);

  RecallMeter partial;
  const PositionLists few(model_->config.num_kv_heads, {0, 11, 23});
  Run(&partial, few);
  s = partial.Summarize();
  ASSERT_EQ(s.per_layer.size(), static_cast<size_t>(model_->config.num_layers));
  EXPECT_GT(s.mean, 0.0);
  EXPECT_LT(s.mean, 0.99);
  EXPECT_LE(s.min, s.p1);
  EXPECT_LE(s.p50, s.max);

  // With layer 0 dense, the row attends to everything there and the rest is unchanged.
  RecallMeter first_dense;
  Run(&first_dense, few, 1);
  const RecallSummary d = first_dense.Summarize();
  ASSERT_EQ(d.per_layer.size(), s.per_layer.size());
  EXPECT_NEAR(d.per_layer[0], 1.0, 1e-6);
  EXPECT_LT(s.per_layer[0], 0.99);
  for (size_t layer = 1; layer < d.per_layer.size(); ++layer) EXPECT_LT(d.per_layer[layer], 0.99);
}

}  // namespace
}  // namespace specontext

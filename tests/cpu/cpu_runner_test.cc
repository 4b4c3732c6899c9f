// The CPU forward pass on every tiny preset: chunking, batching and paging must not change the
// logits, an independent dense forward pass must agree, and malformed steps are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "engine/cpu/cpu_model_runner.h"
#include "engine/cpu/rmsnorm.h"
#include "engine/model/model.h"
#include "tests/cpu/dense_reference.h"
#include "tests/cpu/paged_kv.h"

namespace specontext {
namespace {

using testing::PagedKv;

constexpr int kMaxTokens = 64;

std::unique_ptr<Model> Load(const std::string& preset) {
  auto model = LoadModel(preset);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

std::unique_ptr<cpu::CpuModelRunner> MakeRunner(const Model& model, int block_tokens = 16) {
  auto runner = cpu::CpuModelRunner::Create(model, {.block_tokens = block_tokens});
  EXPECT_TRUE(runner.ok()) << runner.status().ToString();
  return runner.ok() ? std::move(runner).value() : nullptr;
}

std::vector<int32_t> RandomTokens(int count, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> tokens(count);
  for (int32_t& t : tokens) t = dist(rng);
  return tokens;
}

// Runs `tokens` through fresh KV in chunks of the given sizes (cycled) and returns every logit.
std::vector<float> RunInChunks(ModelRunner& runner, const std::vector<int32_t>& tokens,
                               std::vector<int> chunks, uint32_t kv_seed) {
  PagedKv kv(runner.kv_layout(), kMaxTokens, kv_seed);
  std::vector<float> logits;
  size_t pos = 0;
  for (size_t c = 0; pos < tokens.size(); ++c) {
    const size_t len = std::min<size_t>(chunks[c % chunks.size()], tokens.size() - pos);
    BatchStep step;
    step.sequences.push_back({.tokens = {tokens.begin() + pos, tokens.begin() + pos + len},
                              .start_position = static_cast<int32_t>(pos),
                              .block_table = kv.table(),
                              .all_logits = true});
    StepOutput out;
    const Status st = runner.Step(step, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    logits.insert(logits.end(), out.logits.begin(), out.logits.end());
    pos += len;
  }
  return logits;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol) << "logit " << i;
  }
}

class CpuRunnerPresetTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    model_ = Load(std::string("preset:") + GetParam());
    ASSERT_NE(model_, nullptr);
    runner_ = MakeRunner(*model_);
    ASSERT_NE(runner_, nullptr);
    vocab_ = model_->config.vocab_size;
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<cpu::CpuModelRunner> runner_;
  int vocab_ = 0;
};

TEST_P(CpuRunnerPresetTest, ChunkedPrefillOneShotAndDecodeAgree) {
  const auto tokens = RandomTokens(37, vocab_, 11);
  const auto one_shot = RunInChunks(*runner_, tokens, {37}, 1);
  ASSERT_EQ(one_shot.size(), tokens.size() * vocab_);
  for (float l : one_shot) ASSERT_TRUE(std::isfinite(l));
  // Chunk edges inside and across 16-token blocks, with different block placement.
  ExpectClose(RunInChunks(*runner_, tokens, {5, 11, 16, 3}, 2), one_shot, 1e-5);
  ExpectClose(RunInChunks(*runner_, tokens, {1}, 3), one_shot, 1e-5);
}

TEST_P(CpuRunnerPresetTest, MatchesIndependentDenseReference) {
  const auto tokens = RandomTokens(21, vocab_, 12);
  const auto got = RunInChunks(*runner_, tokens, {8, 13}, 4);
  const auto want = testing::DenseReferenceLogits(*model_, tokens);
  ASSERT_EQ(got.size(), want.size());
  double max_ref = 0.0;
  for (double v : want) max_ref = std::max(max_ref, std::abs(v));
  ASSERT_GT(max_ref, 1e-3) << "logits too small for the comparison to mean anything";
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * max_ref + 1e-6) << i;
}

TEST_P(CpuRunnerPresetTest, BatchOfMixedSequencesMatchesEachAlone) {
  // Sequence 0 decodes one token after a 20-token history, 1 prefills a chunk after 9 cached
  // tokens, 2 prefills from scratch with only its last logit requested.
  const std::vector<std::vector<int32_t>> seqs = {
      RandomTokens(21, vocab_, 21), RandomTokens(16, vocab_, 22), RandomTokens(30, vocab_, 23)};
  const std::vector<int> cached = {20, 9, 0};
  std::vector<PagedKv> kvs;
  for (int s = 0; s < 3; ++s) kvs.emplace_back(runner_->kv_layout(), kMaxTokens, 30 + s);
  BatchStep history;
  for (int s = 0; s < 3; ++s) {
    if (cached[s] == 0) continue;
    history.sequences.push_back(
        {.tokens = {seqs[s].begin(), seqs[s].begin() + cached[s]}, .block_table = kvs[s].table()});
  }
  StepOutput out;
  ASSERT_TRUE(runner_->Step(history, &out).ok());
  BatchStep step;
  for (int s = 0; s < 3; ++s) {
    step.sequences.push_back({.tokens = {seqs[s].begin() + cached[s], seqs[s].end()},
                              .start_position = cached[s],
                              .block_table = kvs[s].table(),
                              .all_logits = s == 1});
  }
  ASSERT_TRUE(runner_->Step(step, &out).ok());
  ASSERT_EQ(out.vocab_size, vocab_);
  ASSERT_EQ(out.logits.size(), static_cast<size_t>(1 + 7 + 1) * vocab_);

  std::vector<float> expected;
  for (int s = 0; s < 3; ++s) {
    const auto alone = RunInChunks(*runner_, seqs[s], {64}, 40 + s);
    const size_t first_row = s == 1 ? cached[s] : seqs[s].size() - 1;
    expected.insert(expected.end(), alone.begin() + first_row * vocab_, alone.end());
  }
  ExpectClose(out.logits, expected, 1e-5);
}

TEST_P(CpuRunnerPresetTest, CapturedLayersAreTheResidualStreamInCallerOrder) {
  const ModelConfig& config = model_->config;
  const int hidden = config.hidden_size, layers = config.num_layers;
  const std::vector<int32_t> a = RandomTokens(12, vocab_, 51), b = RandomTokens(5, vocab_, 52);
  PagedKv kv_a(runner_->kv_layout(), kMaxTokens, 53), kv_b(runner_->kv_layout(), kMaxTokens, 54);
  // Sequence a decodes its last token beside b's whole prompt: every token comes back, a first.
  BatchStep history;
  history.sequences.push_back({.tokens = {a.begin(), a.end() - 1}, .block_table = kv_a.table()});
  StepOutput out;
  ASSERT_TRUE(runner_->Step(history, &out).ok());
  EXPECT_TRUE(out.hidden.empty());
  BatchStep step;
  step.capture_layers = {layers, 0, 1};
  step.sequences.push_back(
      {.tokens = {b.begin(), b.end()}, .block_table = kv_b.table(), .all_logits = true});
  step.sequences.push_back(
      {.tokens = {a.back()}, .start_position = 11, .block_table = kv_a.table()});
  ASSERT_TRUE(runner_->Step(step, &out).ok());
  const size_t width = 3 * static_cast<size_t>(hidden);
  ASSERT_EQ(out.hidden.size(), 6 * width);

  const TensorView* embed = model_->weights.Find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  const TensorView* head = model_->weights.Find("lm_head.weight");
  if (head == nullptr) head = embed;
  const TensorView* norm = model_->weights.Find("model.norm.weight");
  ASSERT_NE(norm, nullptr);
  std::vector<float> norm_w(hidden);
  for (int c = 0; c < hidden; ++c) norm_w[c] = norm->At(c);
  const std::vector<int32_t> order = {b[0], b[1], b[2], b[3], b[4], a.back()};
  const std::vector<size_t> logit_row = {0, 1, 2, 3, 4, 5};
  for (size_t r = 0; r < order.size(); ++r) {
    const float* row = out.hidden.data() + r * width;
    // Slot 1 asked for layer 0: the token's embedding.
    for (int c = 0; c < hidden; ++c) {
      ASSERT_FLOAT_EQ(row[hidden + c], embed->At(int64_t{order[r]} * hidden + c)) << r;
    }
    // Slot 0 asked for the last layer's output: its final norm times the LM head is the logits.
    std::vector<float> normed(hidden);
    cpu::RmsNorm(row, norm_w.data(), normed.data(), 1, hidden,
                 static_cast<float>(config.rms_norm_eps));
    for (int v = 0; v < vocab_; v += 7) {
      double logit = 0;
      for (int c = 0; c < hidden; ++c)
        logit += double(normed[c]) * head->At(int64_t{v} * hidden + c);
      ASSERT_NEAR(out.logits[logit_row[r] * vocab_ + v], logit, 1e-3 + 1e-4 * std::abs(logit));
    }
  }
  // Layer 1's input differs from the embedding (the first layer did something).
  EXPECT_NE(std::vector<float>(out.hidden.begin() + hidden, out.hidden.begin() + 2 * hidden),
            std::vector<float>(out.hidden.begin() + 2 * hidden, out.hidden.begin() + 3 * hidden));

  step.capture_layers = {layers + 1};
  const Status bad = runner_->Step(step, &out);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument) << bad.ToString();
}

TEST_P(CpuRunnerPresetTest, SlidingWindowLimitsAttention) {
  Model windowed = *model_;
  windowed.config.sliding_window = 5;
  auto runner = MakeRunner(windowed, 4);
  ASSERT_NE(runner, nullptr);
  const auto tokens = RandomTokens(19, vocab_, 13);
  const auto got = RunInChunks(*runner, tokens, {7, 1, 1, 4}, 5);
  const auto want = testing::DenseReferenceLogits(windowed, tokens);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << i;
  // The window must change something past its reach, or this test proves nothing.
  const auto full = RunInChunks(*runner_, tokens, {19}, 6);
  EXPECT_GT(std::abs(full.back() - got.back()), 1e-6);
}

TEST_P(CpuRunnerPresetTest, MalformedStepsAreErrors) {
  PagedKv kv(runner_->kv_layout(), 16, 7);
  StepOutput out;
  const auto step_with = [&](SequenceStep seq) {
    BatchStep step;
    step.sequences.push_back(std::move(seq));
    return runner_->Step(step, &out);
  };
  EXPECT_EQ(step_with({.tokens = {1, vocab_}, .block_table = kv.table()}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(step_with({.tokens = {-1}, .block_table = kv.table()}).ok());
  EXPECT_FALSE(step_with({.tokens = {}, .block_table = kv.table()}).ok());
  EXPECT_FALSE(step_with({.tokens = {1}, .start_position = -3, .block_table = kv.table()}).ok());
  // 16 cached + 1 new needs a second block that the table lacks.
  EXPECT_FALSE(step_with({.tokens = {1}, .start_position = 16, .block_table = kv.table()}).ok());
  auto missing_layer = kv.table();
  missing_layer.pop_back();
  EXPECT_FALSE(step_with({.tokens = {1}, .block_table = missing_layer}).ok());
  auto null_block = kv.table();
  null_block[0][0] = nullptr;
  EXPECT_FALSE(step_with({.tokens = {1}, .block_table = null_block}).ok());
  EXPECT_FALSE(runner_->Step(BatchStep{}, nullptr).ok());
  // A good step still works afterwards.
  EXPECT_TRUE(step_with({.tokens = {1, 2, 3}, .block_table = kv.table()}).ok());
}

INSTANTIATE_TEST_SUITE_P(Presets, CpuRunnerPresetTest,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3",
                                           "tiny-mistral"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The same model with every tensor stored as BF16, as most checkpoints ship.
Model AsBf16(const Model& model) {
  Model copy;
  copy.config = model.config;
  copy.config.dtype = DType::kBF16;
  size_t total = 0;
  for (const auto& [name, tensor] : model.weights.tensors()) total += tensor.numel();
  auto buffer = std::make_shared<std::vector<uint16_t>>(total);
  size_t offset = 0;
  for (const auto& [name, tensor] : model.weights.tensors()) {
    for (int64_t i = 0; i < tensor.numel(); ++i) (*buffer)[offset + i] = FloatToBf16(tensor.At(i));
    const TensorView view{DType::kBF16, tensor.shape,
                          reinterpret_cast<const std::byte*>(buffer->data() + offset)};
    EXPECT_TRUE(copy.weights.Add(name, view).ok());
    offset += tensor.numel();
  }
  copy.weights.AddBacking(buffer);
  return copy;
}

TEST(CpuRunnerTest, Bf16WeightsAreConvertedExactly) {
  auto model = Load("preset:tiny-qwen2");
  ASSERT_NE(model, nullptr);
  const Model bf16 = AsBf16(*model);
  auto runner = MakeRunner(bf16);
  ASSERT_NE(runner, nullptr);
  const auto tokens = RandomTokens(9, bf16.config.vocab_size, 14);
  const auto got = RunInChunks(*runner, tokens, {9}, 8);
  const auto want = testing::DenseReferenceLogits(bf16, tokens);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << i;
  // Rounding the weights must show, or the copy silently kept fp32.
  const auto fp32 = testing::DenseReferenceLogits(*model, tokens);
  double diff = 0.0;
  for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::abs(fp32[i] - want[i]));
  EXPECT_GT(diff, 1e-5);
}

TEST(CpuRunnerTest, KvLayoutFollowsTheModel) {
  auto model = Load("preset:tiny-qwen3");
  ASSERT_NE(model, nullptr);
  auto runner = MakeRunner(*model, 8);
  ASSERT_NE(runner, nullptr);
  const KvLayout layout = runner->kv_layout();
  EXPECT_EQ(layout.num_layers, model->config.num_layers);
  EXPECT_EQ(layout.num_kv_heads, model->config.num_kv_heads);
  EXPECT_EQ(layout.head_dim, model->config.head_dim);
  EXPECT_EQ(layout.block_tokens, 8);
  EXPECT_EQ(layout.dtype, DType::kF32);
  EXPECT_FALSE(cpu::CpuModelRunner::Create(*model, {.block_tokens = 0}).ok());
}

}  // namespace
}  // namespace specontext

// CudaModelRunner against the CPU reference (fp32 weights and KV) on the four architectures and
// on head_dim 64 and 128. Tolerances: BF16 weights, activations and KV put logits within a
// relative L2 error of 2e-2 of the reference; greedy picks (teacher-forced, so one flip does not
// derail the rest) agree on at least 90% of decode steps, since BF16 may flip near-ties. The
// same tolerance holds for SpeContext steps (explicit position lists per KV head).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>

#include "engine/device.h"
#include "engine/model/model_presets.h"
#include "engine/sampler/logits_summary.h"
#include "tests/gpu/model_runner_parity.h"

namespace specontext::testing_gpu {
namespace {

constexpr double kTolerance = 2e-2;

int ArgMax(const std::vector<float>& logits, int row, int vocab) {
  const auto begin = logits.begin() + static_cast<long>(row) * vocab;
  return static_cast<int>(std::max_element(begin, begin + vocab) - begin);
}

struct Case {
  const char* name;
  const char* preset;
  int head_dim;
  RopeScaling rope;
  bool untie;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

ModelConfig ConfigFor(const Case& c) {
  ModelConfig config = PresetConfig(c.preset).value();
  config.head_dim = c.head_dim;
  config.rope_scaling = c.rope;
  if (c.untie) config.tie_word_embeddings = false;
  if (c.rope.type == RopeScaling::Type::kDynamic) config.max_position_embeddings = 64;
  return config;
}

class CudaRunnerParity : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

TEST_P(CudaRunnerParity, PrefillChunkedPrefillAndDecodeMatchCpu) {
  const ModelConfig config = ConfigFor(GetParam());
  auto model = RandomModel(config, 77);
  ASSERT_NE(model, nullptr);
  // Three sequences and no room for a fourth: decode graphs must not pad the batch to four.
  ParityHarness h(
      *model, 3, 128,
      {.max_tokens = 256, .max_sequences = 3, .max_logit_rows = 64, .max_graph_batch = 3});
  ASSERT_TRUE(h.ok());
  const int vocab = config.vocab_size;
  std::mt19937 rng(5);
  double worst = 0;
  auto check = [&](const ParityLogits& l, const char* what) {
    ASSERT_EQ(l.cpu.size(), l.cuda.size()) << what;
    const double err = RelErr(l.cuda, l.cpu);
    worst = std::max(worst, err);
    EXPECT_LT(err, kTolerance) << what;
    // Captured layer inputs come back in the caller's token order on both backends.
    ASSERT_EQ(l.cpu_hidden.size(), l.cuda_hidden.size()) << what;
    if (!l.cpu_hidden.empty()) {
      EXPECT_LT(RelErr(l.cuda_hidden, l.cpu_hidden), kTolerance) << what;
    }
  };

  // Summaries the device made against the host reference over the very rows it summarised.
  auto check_summaries = [&](const ParityLogits& l) {
    const LogitsSummaryRequest& request = l.summary_request;
    ASSERT_EQ(l.cuda_summaries.size(), request.temperatures.size());
    for (size_t row = 0; row < l.cuda_summaries.size(); ++row) {
      const LogitsSummary& got = l.cuda_summaries[row];
      const LogitsSummary want =
          SummarizeLogits(std::span<const float>(l.cuda).subspan(row * vocab, vocab),
                          request.temperatures[row], request.gather[row], request.top_k);
      EXPECT_EQ(got.max_logit, want.max_logit);
      EXPECT_EQ(got.non_finite, want.non_finite);
      EXPECT_EQ(got.neg_inf, want.neg_inf);
      EXPECT_NEAR(got.sum, want.sum, 1e-5 * want.sum);
      EXPECT_NEAR(got.sum_scaled, want.sum_scaled, 1e-5 * want.sum_scaled);
      EXPECT_EQ(got.top_tokens, want.top_tokens);
      EXPECT_EQ(got.top_logits, want.top_logits);
      EXPECT_EQ(got.gathered, want.gathered);
    }
  };

  ParityLogits logits;
  auto run = [&](const std::vector<StepPart>& parts) -> ::testing::AssertionResult {
    const Status status = h.Step(parts, &logits);
    if (status.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << status.ToString();
  };
  ASSERT_TRUE(run({{0, RandomTokens(37, vocab, rng), true}, {1, RandomTokens(20, vocab, rng)}}));
  ASSERT_EQ(logits.cpu.size(), size_t(38) * vocab);
  EXPECT_TRUE(logits.cuda_hidden.empty());
  check(logits, "prefill");

  // A prompt in chunks, each batched with decode tokens of the other sequences, and the last
  // layer's output, the embedding and a middle layer's input captured from here on.
  h.set_capture_layers({config.num_layers, 0, config.num_layers / 2});
  const std::vector<int32_t> prompt = RandomTokens(41, vocab, rng);
  for (int begin = 0; begin < 41; begin += 16) {
    const std::vector<int32_t> chunk(prompt.begin() + begin,
                                     prompt.begin() + std::min(41, begin + 16));
    ASSERT_TRUE(
        run({{0, RandomTokens(1, vocab, rng)}, {2, chunk}, {1, RandomTokens(1, vocab, rng)}}));
    check(logits, "chunked prefill with decode");
  }

  int agree = 0, total = 0;
  std::vector<int32_t> next = {1, 2, 3};
  for (int step = 0; step < 40; ++step) {
    // Decode steps alternate whole rows and summaries (both through the same graphs), of the
    // depths serving asks for: greedy 1, greedy with penalties 64, sampled 1024.
    const int depths[] = {0, 1, 0, 64, 0, std::min(1024, vocab)};
    h.set_summary_top_k(depths[step % 6]);
    ASSERT_TRUE(run({{0, {next[0]}}, {1, {next[1]}}, {2, {next[2]}}}));
    check(logits, "decode");
    if (depths[step % 6] > 0) check_summaries(logits);
    for (int s = 0; s < 3; ++s) {
      next[s] = ArgMax(logits.cpu, s, vocab);
      agree += ArgMax(logits.cuda, s, vocab) == next[s];
      ++total;
    }
  }
  h.set_summary_top_k(0);
  // SpeContext steps: sequence 0 attends to a random half of its positions per KV head (the
  // newest always among them), 1 densely, 2 through a list of every position, in one batch;
  // from step 12 on, the first layer attends densely in the sparse rows too.
  for (int step = 0; step < 20; ++step) {
    h.set_dense_layers(step < 12 ? 0 : 1);
    std::vector<StepPart> parts = {{0, {next[0]}}, {1, {next[1]}}, {2, {next[2]}}};
    for (int s : {0, 2}) {
      const int length = h.position(s) + 1;
      for (int kv = 0; kv < config.num_kv_heads; ++kv) {
        std::vector<int32_t> list;
        for (int p = 0; p < length; ++p) {
          if (s == 2 || p == length - 1 || rng() % 2 == 0) list.push_back(p);
        }
        parts[s].sparse_positions.push_back(std::move(list));
      }
    }
    ASSERT_TRUE(run(parts));
    check(logits, step < 12 ? "sparse decode" : "sparse decode, layer 0 dense");
    for (int s = 0; s < 3; ++s) next[s] = ArgMax(logits.cpu, s, vocab);
  }
  std::cout << GetParam().name << ": worst relative error " << worst << ", greedy agreement "
            << agree << "/" << total << "\n";
  EXPECT_GE(agree, total * 9 / 10);
  if (config.rope_scaling.type != RopeScaling::Type::kDynamic) {
    EXPECT_GT(h.cuda_runner().graphs_captured(), 0);
  }
}

const RopeScaling kNone{};
const RopeScaling kLlama3{
    .type = RopeScaling::Type::kLlama3, .factor = 8.0, .original_max_position_embeddings = 32};
const RopeScaling kDynamic{.type = RopeScaling::Type::kDynamic, .factor = 2.0};

INSTANTIATE_TEST_SUITE_P(
    Architectures, CudaRunnerParity,
    ::testing::Values(Case{"tiny_llama_hd64", "tiny-llama", 64, kNone, false},
                      Case{"tiny_qwen2_hd64", "tiny-qwen2", 64, kNone, false},
                      Case{"tiny_qwen3_hd64", "tiny-qwen3", 64, kNone, false},
                      Case{"tiny_mistral_hd64", "tiny-mistral", 64, kNone, false},
                      Case{"llama3_rope_hd128", "tiny-llama", 128, kLlama3, true},
                      Case{"dynamic_ntk_hd64", "tiny-llama", 64, kDynamic, false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CudaRunnerErrors, RejectsUnsupportedShapesAndBadSteps) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  auto tiny = BuildPreset("tiny-llama");
  ASSERT_TRUE(tiny.ok());
  auto refused = cuda::CudaModelRunner::Create(**tiny);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(refused.status().message().find("head_dim 16"), std::string::npos);

  ModelConfig config = (*tiny)->config;
  config.head_dim = 64;
  auto model = RandomModel(config, 3);
  auto runner = cuda::CudaModelRunner::Create(
      *model, {.max_tokens = 64, .max_sequences = 4, .max_logit_rows = 16, .max_graph_batch = 4});
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  StepOutput out;
  BatchStep bad{{SequenceStep{.tokens = {config.vocab_size}, .block_table = {}}}};
  EXPECT_EQ((*runner)->Step(bad, &out).code(), StatusCode::kInvalidArgument);
  // Too many tokens for the workspaces: refused before anything runs.
  std::vector<std::byte> fake(1);
  BatchStep big{{SequenceStep{.tokens = std::vector<int32_t>(65, 1),
                              .block_table = std::vector<std::vector<std::byte*>>(
                                  config.num_layers, std::vector<std::byte*>(8, fake.data()))}}};
  EXPECT_EQ((*runner)->Step(big, &out).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace specontext::testing_gpu

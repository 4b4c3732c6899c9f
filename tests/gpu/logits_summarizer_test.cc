// The device's logits summaries against the host reference (SummarizeLogits) on random rows of
// a real vocabulary's width: strong maxima, coarse values so ties occur, masked (−inf) entries,
// a row with a NaN and one with +inf, at each depth serving asks for.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/cuda/logits_summarizer.h"
#include "engine/device.h"
#include "engine/sampler/logits_summary.h"
#include "tests/gpu/kernel_test_util.h"

namespace specontext::testing_gpu {
namespace {

class LogitsSummarizerTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

TEST_P(LogitsSummarizerTest, MatchesHostReference) {
  const int top_k = GetParam();
  constexpr int kRows = 37, kVocab = 151936;
  std::mt19937 rng(97 + top_k);
  std::normal_distribution<float> floor(0.0f, 3.0f);
  std::uniform_int_distribution<int> token(0, kVocab - 1);
  std::vector<float> logits(size_t(kRows) * kVocab);
  for (float& l : logits) l = std::round(floor(rng) * 16.0f) / 16.0f;
  LogitsSummaryRequest request{.top_k = top_k};
  for (int row = 0; row < kRows; ++row) {
    float* r = logits.data() + size_t(row) * kVocab;
    for (int i = 0; i < 6; ++i) r[token(rng)] = 20.0f + static_cast<float>(i % 3);
    for (int i = 0; i < row; ++i) r[token(rng)] = -INFINITY;
    request.temperatures.push_back(0.3f + 0.1f * static_cast<float>(row % 15));
    std::vector<int32_t> gather(row % 5);
    for (int32_t& t : gather) t = token(rng);
    request.gather.push_back(std::move(gather));
  }
  logits[size_t(3) * kVocab + 11] = NAN;
  logits[size_t(5) * kVocab + 12] = INFINITY;
  cuda::DeviceBuffer device = Upload(logits);
  ASSERT_NE(device.data(), nullptr);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cuda::LogitsSummarizer summarizer;
  std::vector<LogitsSummary> got;
  // Twice: the second call reuses the buffers the first one sized.
  for (int pass = 0; pass < 2; ++pass) {
    const Status st =
        summarizer.Summarize(device.as<float>(), kRows, kVocab, request, stream, &got);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  cudaStreamDestroy(stream);
  ASSERT_EQ(got.size(), size_t(kRows));
  for (int row = 0; row < kRows; ++row) {
    const LogitsSummary want =
        SummarizeLogits(std::span<const float>(logits).subspan(size_t(row) * kVocab, kVocab),
                        request.temperatures[row], request.gather[row], top_k);
    const LogitsSummary& g = got[row];
    EXPECT_EQ(g.max_logit, want.max_logit) << row;
    EXPECT_EQ(g.non_finite, want.non_finite) << row;
    EXPECT_EQ(g.neg_inf, want.neg_inf) << row;
    // Float exponentials (device expf within 2 ulp) summed in double, in another order.
    EXPECT_NEAR(g.sum, want.sum, 1e-6 * want.sum) << row;
    EXPECT_NEAR(g.sum_scaled, want.sum_scaled, 1e-6 * want.sum_scaled) << row;
    if (g.non_finite == 0) {  // NaN ranks last on both sides; +inf leads, equal either way
      EXPECT_EQ(g.top_tokens, want.top_tokens) << row;
      EXPECT_EQ(g.top_logits, want.top_logits) << row;
    }
    EXPECT_EQ(g.gathered.size(), want.gathered.size()) << row;
    for (size_t i = 0; i < g.gathered.size(); ++i) {
      EXPECT_EQ(g.gathered[i], want.gathered[i]) << row;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Depths, LogitsSummarizerTest, ::testing::Values(1, 64, 1024));

TEST(LogitsSummarizerErrors, RejectsDepthsBeyondTheKernel) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  cuda::DeviceBuffer device = Upload(std::vector<float>(64, 1.0f));
  cuda::LogitsSummarizer summarizer;
  std::vector<LogitsSummary> out;
  const LogitsSummaryRequest request{.top_k = 65, .temperatures = {1.0f}, .gather = {{}}};
  EXPECT_FALSE(summarizer.Summarize(device.as<float>(), 1, 64, request, nullptr, &out).ok());
}

}  // namespace
}  // namespace specontext::testing_gpu

// Argmax and top-k over logits rows against std::sort, with many ties (values on a coarse grid)
// so the lower-index tie rule is exercised, in F32 and BF16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cuda/topk_kernels.h"
#include "engine/device.h"
#include "tests/gpu/kernel_test_util.h"

namespace specontext::testing_gpu {
namespace {

class TopKTest : public ::testing::TestWithParam<std::tuple<DType, int, int, int>> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

TEST_P(TopKTest, MatchesSortedReference) {
  const auto [dtype, rows, vocab, k] = GetParam();
  std::mt19937 rng(41 + rows + vocab + k);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  const int stride = vocab + 3;
  std::vector<float> values(size_t(rows) * stride);
  for (float& v : values) v = std::round(dist(rng) * 8.0f) / 8.0f + 1.0f / 64.0f;
  cuda::DeviceBuffer d_logits;
  if (dtype == DType::kF32) {
    d_logits = Upload(values);
  } else {
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      bits[i] = Encode(dtype, values[i]);
      values[i] = Decode(dtype, bits[i]);
    }
    d_logits = Upload(bits);
  }
  auto d_vals = Poisoned(size_t(rows) * k * 4), d_idx = Poisoned(size_t(rows) * k * 4);
  const size_t scratch_bytes = cuda::TopKWorkspaceBytes(rows, vocab, k);
  auto scratch = Poisoned(std::max<size_t>(scratch_bytes, 4));
  if (scratch_bytes > 0) {  // a short workspace is refused
    EXPECT_FALSE(cuda::TopK(dtype, d_logits.data(), rows, vocab, stride, k, d_vals.as<float>(),
                            d_idx.as<int32_t>(), scratch.data(), scratch_bytes - 1, nullptr)
                     .ok());
  }
  const Status st = cuda::TopK(dtype, d_logits.data(), rows, vocab, stride, k, d_vals.as<float>(),
                               d_idx.as<int32_t>(), scratch.data(), scratch_bytes, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got_vals(size_t(rows) * k);
  std::vector<int32_t> got_idx(size_t(rows) * k);
  ASSERT_EQ(cudaMemcpy(got_vals.data(), d_vals.data(), got_vals.size() * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(got_idx.data(), d_idx.data(), got_idx.size() * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (int r = 0; r < rows; ++r) {
    const float* row = &values[size_t(r) * stride];
    std::vector<int> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
    for (int i = 0; i < k; ++i) {
      ASSERT_EQ(got_idx[size_t(r) * k + i], order[i]) << "row " << r << " rank " << i;
      ASSERT_EQ(got_vals[size_t(r) * k + i], row[order[i]]) << "row " << r << " rank " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, TopKTest,
                         ::testing::Values(std::make_tuple(DType::kF32, 3, 128256, 1),
                                           std::make_tuple(DType::kBF16, 5, 49152, 1),
                                           std::make_tuple(DType::kF32, 4, 151936, 50),
                                           std::make_tuple(DType::kBF16, 2, 32000, 1024),
                                           std::make_tuple(DType::kF16, 3, 1000, 7),
                                           // chunks shorter than k at the row's end
                                           std::make_tuple(DType::kF32, 2, 9000, 1000),
                                           std::make_tuple(DType::kBF16, 33, 128256, 64),
                                           std::make_tuple(DType::kF32, 1, 5, 5)));

}  // namespace
}  // namespace specontext::testing_gpu

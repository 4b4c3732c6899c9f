// SpeContext selection on the GPU against a float64 reference of the same definition: softmax
// per query head over the head's K cache, element-wise max over each GQA group, top-B per KV
// head with sinks and a recent window forced in, positions ascending. A position the kernel
// picks that the reference does not must sit at the boundary: its reference weight within
// 1e-4 (relative) of the reference's B-th largest. The selected mass agrees within 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "engine/cuda/selection_kernels.h"
#include "engine/device.h"
#include "tests/gpu/kernel_test_util.h"

namespace specontext::testing_gpu {
namespace {

struct SelectCase {
  DType dtype;
  int head_dim;
  int q_heads;
  int kv_heads;
  std::vector<int> lens;
  int budget;
  int sinks;
  int window;
};

class SelectionTest : public ::testing::TestWithParam<SelectCase> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

TEST_P(SelectionTest, MatchesReference) {
  const SelectCase c = GetParam();
  std::mt19937 rng(7 + c.head_dim + c.budget + c.lens.front());
  const int rows = static_cast<int>(c.lens.size()), D = c.head_dim;
  const int group = c.q_heads / c.kv_heads;
  PagedKvPool pool(c.dtype, c.kv_heads, D, 16, c.lens, rng);
  ASSERT_TRUE(pool.ok());
  const int q_stride = c.q_heads * D + 8;
  const HalfTensor q = RandomHalf(c.dtype, size_t(rows) * q_stride, rng);
  const int max_len = *std::max_element(c.lens.begin(), c.lens.end());
  const float scale = 1.0f / std::sqrt(float(D));

  std::vector<int32_t> lens(c.lens.begin(), c.lens.end());
  auto d_q = Upload(q.bits);
  auto d_lens = Upload(lens);
  const size_t slots = size_t(rows) * c.kv_heads;
  auto d_idx = Poisoned(slots * c.budget * sizeof(int32_t));
  auto d_counts = Poisoned(slots * sizeof(int32_t));
  auto d_mass = Poisoned(slots * sizeof(float));
  const size_t ws_bytes = cuda::SelectionWorkspaceBytes(rows, c.q_heads, c.kv_heads, max_len);
  auto d_ws = Poisoned(ws_bytes);

  cuda::SelectionArgs args{.q = d_q.data(),
                           .q_stride = q_stride,
                           .rows = rows,
                           .num_q_heads = c.q_heads,
                           .scale = scale,
                           .lengths = d_lens.as<int32_t>(),
                           .max_length = max_len,
                           .budget = c.budget,
                           .sinks = c.sinks,
                           .window = c.window,
                           .indices = d_idx.as<int32_t>(),
                           .counts = d_counts.as<int32_t>(),
                           .mass = d_mass.as<float>()};
  const Status st = cuda::SelectPositions(args, pool.view(), d_ws.data(), ws_bytes, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<int32_t> idx(slots * c.budget), counts(slots);
  std::vector<float> mass(slots);
  ASSERT_EQ(cudaMemcpy(idx.data(), d_idx.data(), idx.size() * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(counts.data(), d_counts.data(), slots * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(mass.data(), d_mass.data(), slots * 4, cudaMemcpyDeviceToHost), cudaSuccess);

  for (int r = 0; r < rows; ++r) {
    const int len = c.lens[r];
    for (int h = 0; h < c.kv_heads; ++h) {
      // Reference group-max weights.
      std::vector<double> w(len, 0.0);
      for (int g = 0; g < group; ++g) {
        const float* qh = &q.values[size_t(r) * q_stride + size_t(h * group + g) * D];
        std::vector<double> s(len);
        for (int p = 0; p < len; ++p) {
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += double(qh[d]) * pool.K(r, h, p, d);
          s[p] = dot * scale;
        }
        const double m = *std::max_element(s.begin(), s.end());
        double l = 0;
        for (double v : s) l += std::exp(v - m);
        for (int p = 0; p < len; ++p) w[p] = std::max(w[p], std::exp(s[p] - m) / l);
      }
      auto forced = [&](int p) { return p < c.sinks || p >= len - c.window; };
      const size_t slot = size_t(r) * c.kv_heads + h;
      const int want = std::min(len, c.budget);
      ASSERT_EQ(counts[slot], want) << "row " << r << " head " << h;
      std::vector<int> got(idx.begin() + slot * c.budget, idx.begin() + slot * c.budget + want);
      ASSERT_TRUE(std::is_sorted(got.begin(), got.end()));
      ASSERT_EQ(std::set<int>(got.begin(), got.end()).size(), got.size());
      ASSERT_GE(got.front(), 0);
      ASSERT_LT(got.back(), len);
      for (int p = 0; p < len; ++p) {
        if (forced(p) && want < len) {
          EXPECT_TRUE(std::binary_search(got.begin(), got.end(), p)) << "forced " << p;
        }
      }
      // The reference's B-th largest weight among unforced positions.
      std::vector<int> order(len);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        if (forced(a) != forced(b)) return forced(a);
        return w[a] > w[b];
      });
      const double boundary = w[order[want - 1]];
      std::set<int> ref(order.begin(), order.begin() + want);
      double sel = 0, total = 0;
      for (int p = 0; p < len; ++p) total += w[p];
      for (int p : got) {
        sel += w[p];
        if (!ref.contains(p)) {
          EXPECT_NEAR(w[p], boundary, 1e-4 * boundary + 1e-12) << "position " << p;
        }
      }
      EXPECT_NEAR(mass[slot], sel / total, 1e-4) << "row " << r << " head " << h;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SelectionTest,
    ::testing::Values(SelectCase{DType::kBF16, 128, 32, 8, {5000, 100, 2049}, 256, 4, 16},
                      SelectCase{DType::kF16, 64, 9, 3, {700, 65}, 64, 0, 0},
                      // 3 rows of 9 heads over an odd length: the workspace's sections after
                      // the scores must still start aligned.
                      SelectCase{DType::kF16, 64, 9, 3, {701, 65, 300}, 64, 4, 0},
                      SelectCase{DType::kBF16, 128, 8, 8, {20000}, 2048, 16, 64},
                      SelectCase{DType::kBF16, 256, 8, 1, {3000, 1500}, 1024, 0, 32},
                      // Groups of 6 and 16: the score kernel's 8- and 16-head variants, the
                      // latter with more heads than lanes per K row.
                      SelectCase{DType::kBF16, 128, 12, 2, {3000, 33}, 512, 4, 0},
                      SelectCase{DType::kF16, 64, 16, 1, {900}, 128, 0, 8}));

TEST(SelectionErrors, RejectsBadArguments) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  std::mt19937 rng(1);
  PagedKvPool pool(DType::kBF16, 2, 64, 16, {32}, rng);
  ASSERT_TRUE(pool.ok());
  cuda::SelectionArgs args{
      .rows = 1, .num_q_heads = 4, .max_length = 32, .budget = 8, .sinks = 6, .window = 6};
  auto ws = Poisoned(cuda::SelectionWorkspaceBytes(1, 4, 2, 32));
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);  // sinks + window over the budget
  args.sinks = 0;
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);  // no arrays
  args.num_q_heads = 3;
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);  // not a multiple of the KV heads
  // Every array present, but q rows not 16-byte aligned.
  auto arrays = Poisoned(4096);
  char* base = static_cast<char*>(arrays.data());
  args.num_q_heads = 4;
  args.q = base + 2;
  args.q_stride = 4 * 64;
  args.lengths = reinterpret_cast<const int32_t*>(base + 1024);
  args.indices = reinterpret_cast<int32_t*>(base + 2048);
  args.counts = reinterpret_cast<int32_t*>(base + 3072);
  args.mass = reinterpret_cast<float*>(base + 3584);
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);
  args.q = base;
  args.q_stride = 4 * 64 + 4;
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace specontext::testing_gpu

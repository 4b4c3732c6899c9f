// Paged decode attention, dense and sparse (explicit positions per sequence and KV head),
// against the float64 reference: GQA groups 1 to 20, head_dim 64/128/256, lengths that are not
// multiples of the block size, single tokens, long enough to split along the sequence, and
// batches mixing sparse and dense rows (a negative count).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cuda/decode_attention.h"
#include "engine/device.h"
#include "tests/gpu/attention_reference.h"

namespace specontext::testing_gpu {
namespace {

struct DecodeCase {
  DType dtype;
  int head_dim;
  int q_heads;
  int kv_heads;
  std::vector<int> lens;
  enum Mode { kDense, kSparse, kMixed } mode;
};

class DecodeAttentionTest : public ::testing::TestWithParam<DecodeCase> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

TEST_P(DecodeAttentionTest, MatchesReference) {
  const DecodeCase c = GetParam();
  std::mt19937 rng(99 + c.head_dim + c.q_heads * 5 + c.lens.back() + c.mode);
  const int batch = static_cast<int>(c.lens.size()), D = c.head_dim;
  const int group = c.q_heads / c.kv_heads;
  PagedKvPool pool(c.dtype, c.kv_heads, D, 16, c.lens, rng);
  ASSERT_TRUE(pool.ok());
  // q rows padded past num_q_heads x head_dim to exercise the stride.
  const int q_stride = c.q_heads * D + 8;
  const HalfTensor q = RandomHalf(c.dtype, size_t(batch) * q_stride, rng);
  const float scale = 1.0f / std::sqrt(float(D));

  // Sparse: each (sequence, KV head) picks its own positions, in shuffled order, some lists
  // shorter than others.
  int max_len = 0;
  std::vector<std::vector<int>> lists(size_t(batch) * c.kv_heads);
  for (int b = 0; b < batch; ++b) {
    for (int h = 0; h < c.kv_heads; ++h) {
      std::vector<int>& list = lists[size_t(b) * c.kv_heads + h];
      list.resize(c.lens[b]);
      std::iota(list.begin(), list.end(), 0);
      if (c.mode == DecodeCase::kSparse || (c.mode == DecodeCase::kMixed && b % 2 == 0)) {
        std::shuffle(list.begin(), list.end(), rng);
        list.resize(std::max<size_t>(1, list.size() * (h + 1) / (c.kv_heads + 1)));
      }
      max_len = std::max(max_len, static_cast<int>(list.size()));
    }
  }
  const int index_stride = *std::max_element(c.lens.begin(), c.lens.end());
  std::vector<int32_t> indices(lists.size() * index_stride, -1), counts(lists.size());
  for (size_t i = 0; i < lists.size(); ++i) {
    std::copy(lists[i].begin(), lists[i].end(), indices.begin() + i * index_stride);
    counts[i] = static_cast<int32_t>(lists[i].size());
    if (c.mode == DecodeCase::kMixed && (i / c.kv_heads) % 2 == 1) counts[i] = -1;
  }
  std::vector<int32_t> lens(c.lens.begin(), c.lens.end());

  auto d_q = Upload(q.bits);
  auto d_lens = Upload(lens);
  auto d_idx = Upload(indices);
  auto d_counts = Upload(counts);
  auto d_out = Poisoned(size_t(batch) * c.q_heads * D * 2);
  auto plan = cuda::PlanDecodeAttention(pool.view(), batch, c.q_heads, max_len);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto d_ws = Poisoned(std::max<size_t>(plan->workspace_bytes, 4));

  cuda::DecodeAttentionArgs args;
  args.q = d_q.data();
  args.out = d_out.data();
  args.q_stride = q_stride;
  args.out_stride = c.q_heads * D;
  args.batch = batch;
  args.num_q_heads = c.q_heads;
  args.scale = scale;
  args.seq_lens = d_lens.as<int32_t>();
  if (c.mode != DecodeCase::kDense) {
    args.indices = d_idx.as<int32_t>();
    args.index_counts = d_counts.as<int32_t>();
    args.index_stride = index_stride;
  }
  std::vector<double> ref;
  for (int b = 0; b < batch; ++b) {
    for (int h = 0; h < c.q_heads; ++h) {
      ReferenceAttention(pool, b, h / group, &q.values[size_t(b) * q_stride + h * D], D, scale,
                         lists[size_t(b) * c.kv_heads + h / group], ref);
    }
  }
  // The plan's choice of kernel variant, then the other one, on a freshly poisoned output.
  for (const bool prefetch_v : {plan->prefetch_v, !plan->prefetch_v}) {
    cuda::DecodeAttentionPlan variant = *plan;
    variant.prefetch_v = prefetch_v;
    ASSERT_EQ(cudaMemset(d_out.data(), 0xff, d_out.bytes()), cudaSuccess);
    const Status st = cuda::DecodeAttention(args, pool.view(), variant, d_ws.data(), nullptr);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = DecodeAll(c.dtype, DownloadHalf(d_out, ref.size()));
    EXPECT_LT(RelativeError(got, ref), c.dtype == DType::kBF16 ? 1e-2 : 2e-3)
        << "splits " << plan->splits << " chunk " << plan->chunk << " prefetch_v " << prefetch_v;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DecodeAttentionTest,
    ::testing::Values(
        DecodeCase{DType::kBF16, 128, 32, 8, {1, 17, 1000, 5000}, DecodeCase::kDense},
        DecodeCase{DType::kBF16, 128, 32, 8, {1, 17, 1000, 5000}, DecodeCase::kSparse},
        DecodeCase{DType::kBF16, 64, 8, 8, {33, 2}, DecodeCase::kDense},
        DecodeCase{DType::kBF16, 128, 64, 8, {300, 4097}, DecodeCase::kDense},
        DecodeCase{DType::kBF16, 128, 64, 8, {300, 4097}, DecodeCase::kSparse},
        DecodeCase{DType::kF16, 64, 9, 3, {100, 1, 250}, DecodeCase::kDense},
        DecodeCase{DType::kF16, 64, 9, 3, {100, 1, 250}, DecodeCase::kSparse},
        DecodeCase{DType::kBF16, 128, 40, 2, {700}, DecodeCase::kDense},
        DecodeCase{DType::kBF16, 256, 8, 1, {129, 64}, DecodeCase::kSparse},
        DecodeCase{DType::kBF16, 128, 32, 8, {3000, 5000, 17, 40}, DecodeCase::kMixed},
        DecodeCase{DType::kF16, 64, 9, 3, {100, 1, 250}, DecodeCase::kMixed}));

}  // namespace
}  // namespace specontext::testing_gpu

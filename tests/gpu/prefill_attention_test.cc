// Causal variable-length prefill attention over paged KV, including chunks that start after
// cached positions, against the float64 reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cuda/prefill_attention.h"
#include "engine/device.h"
#include "tests/gpu/attention_reference.h"

namespace specontext::testing_gpu {
namespace {

struct Chunk {
  int past;  // cached positions before the chunk
  int new_tokens;
};

struct PrefillCase {
  DType dtype;
  int head_dim;
  int q_heads;
  int kv_heads;
  std::vector<Chunk> chunks;
};

// Each case at every tile height the kernel has, and at the one it picks (0).
class PrefillAttentionTest : public ::testing::TestWithParam<std::tuple<PrefillCase, int>> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

TEST_P(PrefillAttentionTest, MatchesReference) {
  const auto& [c, tile_rows] = GetParam();
  std::mt19937 rng(7 + c.head_dim + c.q_heads * 5 + c.chunks.back().past);
  const int seqs = static_cast<int>(c.chunks.size()), D = c.head_dim;
  const int group = c.q_heads / c.kv_heads;
  std::vector<int> capacities;
  std::vector<int32_t> q_start, q_len, kv_len;
  int rows = 0, max_q = 0;
  for (const Chunk& ch : c.chunks) {
    capacities.push_back(ch.past + ch.new_tokens);
    q_start.push_back(rows);
    q_len.push_back(ch.new_tokens);
    kv_len.push_back(ch.past + ch.new_tokens);
    rows += ch.new_tokens;
    max_q = std::max(max_q, ch.new_tokens);
  }
  PagedKvPool pool(c.dtype, c.kv_heads, D, 16, capacities, rng);
  ASSERT_TRUE(pool.ok());
  const int stride = c.q_heads * D;
  const HalfTensor q = RandomHalf(c.dtype, size_t(rows) * stride, rng);
  const float scale = 1.0f / std::sqrt(float(D));

  auto d_q = Upload(q.bits);
  auto d_start = Upload(q_start), d_qlen = Upload(q_len), d_kvlen = Upload(kv_len);
  auto d_out = Poisoned(size_t(rows) * stride * 2);
  cuda::PrefillAttentionArgs args;
  args.q = d_q.data();
  args.out = d_out.data();
  args.q_stride = args.out_stride = stride;
  args.num_seqs = seqs;
  args.num_q_heads = c.q_heads;
  args.scale = scale;
  args.q_start = d_start.as<int32_t>();
  args.q_len = d_qlen.as<int32_t>();
  args.kv_len = d_kvlen.as<int32_t>();
  args.max_q_len = max_q;
  args.tile_rows = tile_rows;
  const Status st = cuda::PrefillAttention(args, pool.view(), nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<double> ref;
  for (int s = 0; s < seqs; ++s) {
    for (int i = 0; i < q_len[s]; ++i) {
      std::vector<int> visible(c.chunks[s].past + i + 1);
      std::iota(visible.begin(), visible.end(), 0);
      for (int h = 0; h < c.q_heads; ++h) {
        ReferenceAttention(pool, s, h / group, &q.values[size_t(q_start[s] + i) * stride + h * D],
                           D, scale, visible, ref);
      }
    }
  }
  const std::vector<float> got = DecodeAll(c.dtype, DownloadHalf(d_out, ref.size()));
  // P is rounded to 16 bits before P·V; both roundings stay well inside these bounds.
  EXPECT_LT(RelativeError(got, ref), c.dtype == DType::kBF16 ? 1e-2 : 2e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PrefillAttentionTest,
    ::testing::Combine(::testing::Values(
                           PrefillCase{
                               DType::kBF16, 128, 32, 8, {{0, 1}, {0, 100}, {37, 64}, {200, 130}}},
                           PrefillCase{DType::kBF16, 64, 9, 3, {{0, 77}, {5, 1}}},
                           PrefillCase{DType::kF16, 128, 8, 8, {{0, 129}}},
                           PrefillCase{DType::kBF16, 128, 64, 8, {{600, 65}}},
                           PrefillCase{DType::kF16, 64, 4, 1, {{16, 16}, {3, 200}}}),
                       ::testing::Values(0, 64, 128)));

TEST(PrefillAttentionArgsTest, RefusesAnUnknownTileHeight) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  std::mt19937 rng(3);
  PagedKvPool pool(DType::kBF16, 1, 64, 16, {16}, rng);
  ASSERT_TRUE(pool.ok());
  auto d_meta = Upload(std::vector<int32_t>{0, 16, 16});
  auto d_q = Poisoned(16 * 64 * 2);
  cuda::PrefillAttentionArgs args;
  args.q = args.out = d_q.data();
  args.q_stride = args.out_stride = 64;
  args.num_seqs = 1;
  args.num_q_heads = 1;
  args.q_start = d_meta.as<int32_t>();
  args.q_len = d_meta.as<int32_t>() + 1;
  args.kv_len = d_meta.as<int32_t>() + 2;
  args.max_q_len = 16;
  args.tile_rows = 32;
  EXPECT_FALSE(cuda::PrefillAttention(args, pool.view(), nullptr).ok());
}

}  // namespace
}  // namespace specontext::testing_gpu

// SpeContext selection on the GPU against a float64 reference of the same definition: softmax
// per query head over the head's K cache, element-wise max over each GQA group, top-B per KV
// head with sinks and a recent window forced in, positions ascending. A position the kernel
// picks that the reference does not must sit at the boundary: its reference weight within
// 1e-4 (relative) of the reference's B-th largest. The selected mass agrees within 1e-4. With
// the selection memory, the ranking (and the memory it leaves) within 1e-4 (relative).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
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
    const SelectCase& c = GetParam();
    rng_.seed(7 + c.head_dim + c.budget + c.lens.front());
    pool_ = std::make_unique<PagedKvPool>(c.dtype, c.kv_heads, c.head_dim, 16, c.lens, rng_);
    ASSERT_TRUE(pool_->ok());
  }

  std::mt19937 rng_;
  std::unique_ptr<PagedKvPool> pool_;
};

// Float64 group-max softmax weights of row r, KV head h, over its first `len` positions.
std::vector<double> ReferenceWeights(const SelectCase& c, const HalfTensor& q, int q_stride,
                                     const PagedKvPool& pool, int r, int h, int len) {
  const int group = c.q_heads / c.kv_heads, D = c.head_dim;
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> w(len, 0.0);
  for (int g = 0; g < group; ++g) {
    const float* qh = &q.values[size_t(r) * q_stride + size_t(h * group + g) * D];
    std::vector<double> s(len);
    for (int p = 0; p < len; ++p) {
      double dot = 0;
      for (int d = 0; d < D; ++d) dot += double(qh[d]) * pool.K(r, h, p, d);
      s[p] = dot * float(scale);
    }
    const double m = *std::max_element(s.begin(), s.end());
    double l = 0;
    for (double v : s) l += std::exp(v - m);
    for (int p = 0; p < len; ++p) w[p] = std::max(w[p], std::exp(s[p] - m) / l);
  }
  return w;
}

// One (row, KV head)'s list `got` against the reference ranking `rank`: forced positions in,
// every other pick at or above the B-th largest rank (within 1e-4), the mass the share of `w`.
void ExpectTopB(const SelectCase& c, int len, const std::vector<double>& rank,
                const std::vector<double>& w, const std::vector<int>& got, float mass) {
  auto forced = [&](int p) { return p < c.sinks || p >= len - c.window; };
  const int want = std::min(len, c.budget);
  ASSERT_EQ(int(got.size()), want);
  ASSERT_TRUE(std::is_sorted(got.begin(), got.end()));
  ASSERT_EQ(std::set<int>(got.begin(), got.end()).size(), got.size());
  ASSERT_GE(got.front(), 0);
  ASSERT_LT(got.back(), len);
  for (int p = 0; p < len; ++p) {
    if (forced(p) && want < len) {
      EXPECT_TRUE(std::binary_search(got.begin(), got.end(), p)) << "forced " << p;
    }
  }
  std::vector<int> order(len);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (forced(a) != forced(b)) return forced(a);
    return rank[a] > rank[b];
  });
  const double boundary = rank[order[want - 1]];
  std::set<int> ref(order.begin(), order.begin() + want);
  double sel = 0, total = 0;
  for (int p = 0; p < len; ++p) total += w[p];
  for (int p : got) {
    sel += w[p];
    if (!ref.contains(p)) {
      EXPECT_NEAR(rank[p], boundary, 1e-4 * boundary + 1e-12) << "position " << p;
    }
  }
  EXPECT_NEAR(mass, sel / total, 1e-4);
}

// One launch over `lens` (remembered: the memory's valid positions per row, or empty for none).
struct Launched {
  std::vector<int32_t> idx, counts;
  std::vector<float> mass;
};

Launched Launch(const SelectCase& c, const std::vector<int>& lens, const cuda::DeviceBuffer& d_q,
                int q_stride, const PagedKvPool& pool, float decay, float* const* d_memory,
                const std::vector<int32_t>& remembered) {
  const int rows = static_cast<int>(lens.size());
  const int max_len = *std::max_element(lens.begin(), lens.end());
  auto d_lens = Upload(std::vector<int32_t>(lens.begin(), lens.end()));
  auto d_remembered = Upload(remembered.empty() ? std::vector<int32_t>(1) : remembered);
  const size_t slots = size_t(rows) * c.kv_heads;
  auto d_idx = Poisoned(slots * c.budget * sizeof(int32_t));
  auto d_counts = Poisoned(slots * sizeof(int32_t));
  auto d_mass = Poisoned(slots * sizeof(float));
  const size_t ws_bytes = cuda::SelectionWorkspaceBytes(rows, c.q_heads, c.kv_heads, max_len);
  auto d_ws = Poisoned(ws_bytes);
  const cuda::SelectionArgs args{.q = d_q.data(),
                                 .q_stride = q_stride,
                                 .rows = rows,
                                 .num_q_heads = c.q_heads,
                                 .scale = 1.0f / std::sqrt(float(c.head_dim)),
                                 .lengths = d_lens.as<int32_t>(),
                                 .max_length = max_len,
                                 .budget = c.budget,
                                 .sinks = c.sinks,
                                 .window = c.window,
                                 .indices = d_idx.as<int32_t>(),
                                 .counts = d_counts.as<int32_t>(),
                                 .mass = d_mass.as<float>(),
                                 .memory_decay = decay,
                                 .memory = d_memory,
                                 .remembered = decay > 0 ? d_remembered.as<int32_t>() : nullptr};
  const Status st = cuda::SelectPositions(args, pool.view(), d_ws.data(), ws_bytes, nullptr);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Launched out{std::vector<int32_t>(slots * c.budget), std::vector<int32_t>(slots),
               std::vector<float>(slots)};
  cudaMemcpy(out.idx.data(), d_idx.data(), out.idx.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(out.counts.data(), d_counts.data(), slots * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(out.mass.data(), d_mass.data(), slots * 4, cudaMemcpyDeviceToHost);
  return out;
}

std::vector<int> List(const SelectCase& c, const Launched& out, int r, int h) {
  const size_t slot = size_t(r) * c.kv_heads + h;
  return std::vector<int>(out.idx.begin() + slot * c.budget,
                          out.idx.begin() + slot * c.budget + out.counts[slot]);
}

TEST_P(SelectionTest, MatchesReference) {
  const SelectCase c = GetParam();
  const PagedKvPool& pool = *pool_;
  const int rows = static_cast<int>(c.lens.size());
  const int q_stride = c.q_heads * c.head_dim + 8;
  const HalfTensor q = RandomHalf(c.dtype, size_t(rows) * q_stride, rng_);
  const Launched out = Launch(c, c.lens, Upload(q.bits), q_stride, pool, 0.0f, nullptr, {});
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < c.kv_heads; ++h) {
      SCOPED_TRACE(::testing::Message() << "row " << r << " head " << h);
      const std::vector<double> w = ReferenceWeights(c, q, q_stride, pool, r, h, c.lens[r]);
      ExpectTopB(c, c.lens[r], w, w, List(c, out, r, h), out.mass[size_t(r) * c.kv_heads + h]);
    }
  }
}

// Three steps of growing rows over one memory per row: each ranks by max(w, decay x the
// previous ranking) below what the previous step left, and leaves its ranking behind.
TEST_P(SelectionTest, MemoryRanksByTheDecayedMax) {
  const SelectCase c = GetParam();
  const PagedKvPool& pool = *pool_;
  const int rows = static_cast<int>(c.lens.size());
  const int q_stride = c.q_heads * c.head_dim + 8;
  const float decay = 0.9f;
  std::vector<cuda::DeviceBuffer> memories;
  std::vector<float*> pointers;
  for (int len : c.lens) {
    memories.push_back(Poisoned(size_t(len) * c.kv_heads * sizeof(float)));
    pointers.push_back(memories.back().as<float>());
  }
  auto d_pointers = Upload(pointers);
  std::vector<std::vector<std::vector<double>>> rank(rows,
                                                     std::vector<std::vector<double>>(c.kv_heads));
  std::vector<int32_t> remembered(rows, 0);
  for (int step = 2; step >= 0; --step) {
    SCOPED_TRACE(::testing::Message() << "steps left " << step);
    std::vector<int> lens(c.lens);
    for (int& len : lens) len = std::max(1, len - step);
    const HalfTensor q = RandomHalf(c.dtype, size_t(rows) * q_stride, rng_);
    const Launched out =
        Launch(c, lens, Upload(q.bits), q_stride, pool, decay, d_pointers.as<float*>(), remembered);
    for (int r = 0; r < rows; ++r) {
      std::vector<float> memory(size_t(lens[r]) * c.kv_heads);
      ASSERT_EQ(cudaMemcpy(memory.data(), pointers[r], memory.size() * 4, cudaMemcpyDeviceToHost),
                cudaSuccess);
      for (int h = 0; h < c.kv_heads; ++h) {
        SCOPED_TRACE(::testing::Message() << "row " << r << " head " << h);
        const std::vector<double> w = ReferenceWeights(c, q, q_stride, pool, r, h, lens[r]);
        std::vector<double> next = w;
        for (int p = 0; p < remembered[r]; ++p) next[p] = std::max(w[p], decay * rank[r][h][p]);
        rank[r][h] = next;
        for (int p = 0; p < lens[r]; ++p) {
          ASSERT_NEAR(memory[size_t(p) * c.kv_heads + h], next[p], 1e-4 * next[p] + 1e-9)
              << "position " << p;
        }
        ExpectTopB(c, lens[r], next, w, List(c, out, r, h), out.mass[size_t(r) * c.kv_heads + h]);
      }
      remembered[r] = lens[r];
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
  args.q_stride = 4 * 64;
  args.memory_decay = 0.5f;  // a memory without its arrays
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);
  args.memory_decay = 1.5f;
  EXPECT_EQ(cuda::SelectPositions(args, pool.view(), ws.data(), ws.bytes(), nullptr).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace specontext::testing_gpu
